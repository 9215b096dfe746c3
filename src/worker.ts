import { runScheduledJobs } from "../functions";
import { withSentryWhenConfigured } from "./adapters/sentry/cloudflare";
import { type App, createApp } from "./app";
import { ConfigError } from "./config";
import type { Ports } from "./ports";
import { createServices, type Services } from "./services/context";
import { liveRoomHost } from "./services/socket-auth";
import { serveLiveSocket } from "./worker/live-socket";
import { createWorkerPorts } from "./worker/ports";
import type { WorkerEnv } from "./worker/room-contract";

export { GpsRoom } from "../party/gps-room";

/** One app per isolate and bindings object: routes are compiled once, not per request. */
const isolates = new WeakMap<
  WorkerEnv,
  Promise<{ ports: Ports; services: Services; app: App; room: ReturnType<typeof liveRoomHost> }>
>();

function isolateFor(env: WorkerEnv) {
  let isolate = isolates.get(env);
  if (!isolate) {
    isolate = createWorkerPorts(env).then((ports) => {
      const services = createServices(ports);
      return {
        ports,
        services,
        app: createApp(ports, { services }),
        room: liveRoomHost(services, ports.db),
      };
    });
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

const worker = {
  async fetch(request, env, ctx) {
    try {
      const { app, room, ports, services } = await isolateFor(env);
      if (isLiveSocket(request)) {
        return await serveLiveSocket(request, env, room, ports, services);
      }
      return await app.fetch(request, env, ctx);
    } catch (error) {
      if (error instanceof ConfigError) return misconfigured(error);
      throw error;
    }
  },
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(
      isolateFor(env).then(({ ports, services }) => runScheduledJobs(services, ports.db)),
    );
  },
} satisfies ExportedHandler<WorkerEnv>;

/** With `SENTRY_DSN` set, `fetch` runs inside @sentry/cloudflare's request wrapper. */
export default withSentryWhenConfigured(worker);

function isLiveSocket(request: Request) {
  return (
    request.headers.get("upgrade")?.toLowerCase() === "websocket" &&
    new URL(request.url).pathname === "/v1/ws"
  );
}
