import { createPasswordHasher } from "../adapters/argon2-hasher";
import { createCacheAdapters } from "../adapters/cache";
import { workersArgon2 } from "../adapters/cloudflare/argon2";
import { cloudflareGeoIp } from "../adapters/cloudflare/geoip";
import { workersOutboundNetwork } from "../adapters/cloudflare/outbound-network";
import { createConsoleLogger } from "../adapters/console-logger";
import { emailSenderFor } from "../adapters/email/select";
import { createNeonDatabase } from "../adapters/neon/database";
import { createPwnedPasswords } from "../adapters/pwned-passwords";
import { sentryWorkerReporter } from "../adapters/sentry/cloudflare";
import { systemClock } from "../adapters/system-clock";
import { ConfigError, parseConfig } from "../config";
import { sha256Hex } from "../lib/crypto";
import type { Ports } from "../ports";
import { noErrorReporter } from "../ports/error-reporter";
import { createDurableObjectRealtime } from "./realtime";
import type { WorkerEnv } from "./room-contract";

/**
 * The ports on Cloudflare, from the bindings: Neon, Upstash (or in-isolate memory), the
 * Durable Object rooms. Built by the Worker for requests and by the room for its sockets.
 */
export async function createWorkerPorts(env: WorkerEnv): Promise<Ports> {
  const config = parseConfig(env);
  const missing = (["DATABASE_URL", "ADMIN_API_KEY", "KEY_ENCRYPTION_SECRET"] as const).filter(
    (name) => !config[name],
  );
  if (!config.DATABASE_URL || !config.ADMIN_API_KEY || !config.KEY_ENCRYPTION_SECRET) {
    throw new ConfigError(
      `Invalid configuration: ${missing.join(", ")}: required on Workers (npx wrangler secret put NAME)`,
    );
  }
  const clock = systemClock;
  const secrets = {
    adminKeyHash: await sha256Hex(config.ADMIN_API_KEY),
    keyEncryptionSecret: config.KEY_ENCRYPTION_SECRET,
  };
  const { revocations, limiter } = createCacheAdapters(config, clock);
  const logger = createConsoleLogger({ level: config.LOG_LEVEL, fields: { service: "heimdall" } });
  return {
    config,
    db: createNeonDatabase({
      url: config.DATABASE_URL,
      wsProxy: config.NEON_WS_PROXY,
      // As on Node: 3 s for a connection (the health check's bound), 5 s for a query's answer.
      timeouts: { connectMs: 3_000, queryMs: 5_000 },
    }),
    revocations,
    limiter,
    realtime: createDurableObjectRealtime(env.GPS_ROOM),
    secrets,
    passwords: createPasswordHasher(workersArgon2, {
      memoryCost: config.PASSWORD_HASH_MEMORY_KIB,
      timeCost: config.PASSWORD_HASH_ITERATIONS,
    }),
    clientIp: (request) => request.headers.get("cf-connecting-ip") ?? undefined,
    geoip: cloudflareGeoIp,
    outboundNetwork: workersOutboundNetwork,
    email: emailSenderFor(config, logger),
    breachedPasswords: createPwnedPasswords({ baseUrl: config.BREACHED_PASSWORDS_API_URL, logger }),
    // Sends through the client `withSentryWhenConfigured` (src/worker.ts) puts on the request.
    errors: config.SENTRY_DSN ? sentryWorkerReporter : noErrorReporter,
    clock,
    logger,
  };
}
