import { runScheduledJobs } from "../functions";
import { createCacheAdapters } from "./adapters/cache";
import { createConsoleLogger } from "./adapters/console-logger";
import { createNeonDatabase } from "./adapters/neon/database";
import { systemClock } from "./adapters/system-clock";
import { type App, createApp } from "./app";
import { ConfigError, parseConfig } from "./config";
import type { Ports } from "./ports";

export { GpsRoom } from "../party/gps-room";

/** Bindings declared in `wrangler.toml`; string settings arrive as vars and secrets. */
export interface Env {
  GPS_ROOM: DurableObjectNamespace;
  [setting: string]: unknown;
}

/** Builds the Worker's ports from its bindings: Neon, Upstash (or in-isolate memory). */
function createWorkerPorts(env: Env): Ports {
  const config = parseConfig(env);
  if (!config.DATABASE_URL) {
    throw new ConfigError(
      "Invalid configuration: DATABASE_URL: required on Workers (npx wrangler secret put DATABASE_URL)",
    );
  }
  const clock = systemClock;
  const { revocations, limiter } = createCacheAdapters(config, clock);
  return {
    config,
    db: createNeonDatabase({ url: config.DATABASE_URL, wsProxy: config.NEON_WS_PROXY }),
    revocations,
    limiter,
    clock,
    logger: createConsoleLogger({ level: config.LOG_LEVEL, fields: { service: "heimdall" } }),
  };
}

/** One app per isolate and bindings object: routes are compiled once, not per request. */
const isolates = new WeakMap<Env, { ports: Ports; app: App }>();

function isolateFor(env: Env) {
  let isolate = isolates.get(env);
  if (!isolate) {
    const ports = createWorkerPorts(env);
    isolate = { ports, app: createApp(ports) };
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
  fetch(request, env, ctx) {
    try {
      return isolateFor(env).app.fetch(request, env, ctx);
    } catch (error) {
      if (error instanceof ConfigError) return misconfigured(error);
      throw error;
    }
  },
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(runScheduledJobs(isolateFor(env).ports));
  },
} satisfies ExportedHandler<Env>;
