import { runScheduledJobs } from "../functions";
import { createCacheAdapters } from "./adapters/cache";
import { createConsoleLogger } from "./adapters/console-logger";
import { createIdentityPorts } from "./adapters/identity";
import { createMemoryRealtime } from "./adapters/memory/realtime";
import { createNeonDatabase } from "./adapters/neon/database";
import { systemClock } from "./adapters/system-clock";
import { type App, createApp } from "./app";
import { ConfigError, parseConfig } from "./config";
import { sha256Hex } from "./lib/crypto";
import type { Ports } from "./ports";

export { GpsRoom } from "../party/gps-room";

/** Bindings declared in `wrangler.toml`; string settings arrive as vars and secrets. */
export interface Env {
  GPS_ROOM: DurableObjectNamespace;
  [setting: string]: unknown;
}

/** Builds the Worker's ports from its bindings: Neon, Upstash (or in-isolate memory). */
async function createWorkerPorts(env: Env): Promise<Ports> {
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
    db: createNeonDatabase({ url: config.DATABASE_URL, wsProxy: config.NEON_WS_PROXY }),
    revocations,
    limiter,
    realtime: createMemoryRealtime(),
    ...createIdentityPorts(config, secrets, clock, revocations, logger),
    clientIp: (request) => request.headers.get("cf-connecting-ip") ?? undefined,
    clock,
    logger,
  };
}

/** One app per isolate and bindings object: routes are compiled once, not per request. */
const isolates = new WeakMap<Env, Promise<{ ports: Ports; app: App }>>();

function isolateFor(env: Env) {
  let isolate = isolates.get(env);
  if (!isolate) {
    isolate = createWorkerPorts(env).then((ports) => ({ ports, app: createApp(ports) }));
    // A misconfigured isolate is rebuilt on the next request, once the settings are fixed.
    isolate.catch(() => isolates.delete(env));
    isolates.set(env, isolate);
  }
  return isolate;
}

function misconfigured(error: ConfigError) {
  console.error(JSON.stringify({ level: "error", message: error.message }));
  return Response.json(
    {
      error: {
        code: "internal_error",
        message: "The server is misconfigured",
        request_id: crypto.randomUUID(),
      },
    },
    { status: 500 },
  );
}

export default {
  async fetch(request, env, ctx) {
    try {
      const { app } = await isolateFor(env);
      return await app.fetch(request, env, ctx);
    } catch (error) {
      if (error instanceof ConfigError) return misconfigured(error);
      throw error;
    }
  },
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(isolateFor(env).then(({ ports }) => runScheduledJobs(ports)));
  },
} satisfies ExportedHandler<Env>;
