import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { createPasswordHasher } from "../../src/adapters/argon2-hasher";
import { createConsoleLogger } from "../../src/adapters/console-logger";
import { createLogEmailSender } from "../../src/adapters/email/log";
import { createMemoryLimiter } from "../../src/adapters/memory/limiter";
import { createMemoryRealtime } from "../../src/adapters/memory/realtime";
import { createMemoryRevocationStore } from "../../src/adapters/memory/revocations";
import { nodeArgon2 } from "../../src/adapters/node/argon2";
import { createNodeOutboundNetwork } from "../../src/adapters/node/outbound-network";
import { createPgliteDatabase } from "../../src/adapters/pglite/database";
import { createPwnedPasswords } from "../../src/adapters/pwned-passwords";
import { type App, createApp } from "../../src/app";
import { parseConfig } from "../../src/config";
import type { Clock, DatabasePort, Ports } from "../../src/ports";
import { noErrorReporter } from "../../src/ports/error-reporter";
import { noGeoIp } from "../../src/ports/geoip";
import { createServices, type Services } from "../../src/services/context";

export const migrationsFolder = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** A clock tests can move. */
export function createTestClock(start = new Date("2026-11-23T10:00:00.000Z")) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
  } satisfies Clock & { advance(ms: number): void };
}

/** An embedded PGlite in memory with the migrations applied (~3 s: open once per file). */
export function createMemoryDatabase(): Promise<DatabasePort> {
  return createPgliteDatabase({ dataDir: "memory://", migrationsFolder });
}

/** The platform admin key of every test app. */
export const TEST_ADMIN_KEY = "hk_admin_test_0123456789abcdefghijklmnop";
export const adminHeaders = { Authorization: `Bearer ${TEST_ADMIN_KEY}` };

/** Test settings: a fixed admin key and encryption secret, cheap password hashing. */
export const testEnv = {
  APP_ENV: "test",
  PUBLIC_URL: "http://heimdall.test",
  ADMIN_API_KEY: TEST_ADMIN_KEY,
  KEY_ENCRYPTION_SECRET: "test-key-encryption-secret-0123456789abcdef",
  PASSWORD_HASH_MEMORY_KIB: "1024",
  PASSWORD_HASH_ITERATIONS: "1",
  // Suites make hundreds of requests on a clock that stands still; test/rate-limit.test.ts
  // turns limiting on.
  RATE_LIMIT_ENABLED: "false",
  // Tests reach loopback only: an app that turns the breached-password check on (the fuzz walk
  // may) asks a closed loopback port and fails open; a test that checks it starts its own API.
  BREACHED_PASSWORDS_API_URL: "http://127.0.0.1:9/range/",
} as const;

export type LogEvent = { level: string; message: string; [field: string]: unknown };

/**
 * The app on embedded defaults (the given database, memory adapters), with its log events
 * captured in `logs` instead of printed.
 *
 * @example
 * const { app, logs } = createTestApp({ db });
 * const res = await app.request("/health");
 */
export function createTestApp(options: {
  db: DatabasePort;
  env?: Record<string, string>;
  ports?: Partial<Ports>;
  /** Replaces services built from the ports (a key ring shared with another test app). */
  services?: Partial<Services>;
  /** Defaults to a fixed test clock; pass `systemClock` where tokens meet the real time. */
  clock?: Clock;
}) {
  const logs: LogEvent[] = [];
  const config = parseConfig({ ...testEnv, ...options.env });
  const clock = options.clock ?? createTestClock();
  const secrets = {
    adminKeyHash: createHash("sha256")
      .update(config.ADMIN_API_KEY ?? "")
      .digest("hex"),
    keyEncryptionSecret: config.KEY_ENCRYPTION_SECRET ?? "",
  };
  const revocations = createMemoryRevocationStore(clock);
  const logger = createConsoleLogger({
    level: "debug",
    sink: (line) => logs.push(JSON.parse(line)),
  });
  const ports: Ports = {
    config,
    db: options.db,
    clock,
    revocations,
    limiter: createMemoryLimiter(clock),
    realtime: createMemoryRealtime(),
    secrets,
    passwords: createPasswordHasher(nodeArgon2, {
      memoryCost: config.PASSWORD_HASH_MEMORY_KIB,
      timeCost: config.PASSWORD_HASH_ITERATIONS,
    }),
    clientIp: (request) => request.headers.get("x-test-client-ip") ?? undefined,
    geoip: noGeoIp,
    outboundNetwork: createNodeOutboundNetwork(),
    email: createLogEmailSender(logger),
    breachedPasswords: createPwnedPasswords({ baseUrl: config.BREACHED_PASSWORDS_API_URL, logger }),
    errors: noErrorReporter,
    logger,
    ...options.ports,
  };
  const services: Services = { ...createServices(ports), ...options.services };
  return { app: createApp(ports, { services }), ports, services, logs };
}

/**
 * Requests to `app` with an ExecutionContext, as on Workers: the work it leaves for after the
 * answer (`waitUntil`) is kept, and `afterResponses()` resolves once all of it has finished.
 */
export function withExecutionContext(app: App) {
  const pending: Promise<unknown>[] = [];
  const executionCtx = {
    waitUntil: (work: Promise<unknown>) => void pending.push(work),
    passThroughOnException() {},
    props: {},
  };
  return {
    request: (path: string, init?: RequestInit) => app.request(path, init, undefined, executionCtx),
    async afterResponses() {
      while (pending.length > 0) await Promise.all(pending.splice(0));
    },
  };
}
