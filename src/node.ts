import type { IncomingMessage, Server } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { serveStatic } from "@hono/node-server/serve-static";
import { runScheduledJobs } from "../functions";
import { createPasswordHasher } from "./adapters/argon2-hasher";
import { createCacheAdapters } from "./adapters/cache";
import { createConsoleLogger } from "./adapters/console-logger";
import { emailSenderFor } from "./adapters/email/select";
import { nodeArgon2 } from "./adapters/node/argon2";
import { createMaxmindGeoIp } from "./adapters/node/maxmind-geoip";
import { createNodeOutboundNetwork } from "./adapters/node/outbound-network";
import { createNodeRedis } from "./adapters/node/redis";
import { createSmtpEmailSender } from "./adapters/node/smtp";
import { createStdoutLines } from "./adapters/node/stdout-lines";
import { createPgliteDatabase } from "./adapters/pglite/database";
import { createPostgresDatabase } from "./adapters/postgres/database";
import { createPwnedPasswords } from "./adapters/pwned-passwords";
import { createSentryNodeReporter } from "./adapters/sentry/node";
import { systemClock } from "./adapters/system-clock";
import { createApp } from "./app";
import { ConfigError, parseConfig } from "./config";
import { clientIpOf } from "./lib/client-ip";
import { createLiveHub } from "./node/live";
import { createRedisFanout } from "./node/redis-fanout";
import type { Ports } from "./ports";
import { noErrorReporter } from "./ports/error-reporter";
import { noGeoIp } from "./ports/geoip";
import { createServices } from "./services/context";
import { resolvePlatformSecrets } from "./services/platform-secrets";

const migrationsFolder = fileURLToPath(new URL("../drizzle", import.meta.url));
/** The console's production build (`npm run build:console`, run by `npm start` first). */
const consoleBuild = fileURLToPath(new URL("../console/dist", import.meta.url));

/** `npm start`: the app on Node with embedded defaults, or the services the env points at. */
async function main() {
  const config = parseConfig(process.env);
  // First, so the process's own uncaught exceptions are reported from start-up on.
  const sentry = config.SENTRY_DSN ? createSentryNodeReporter(config) : undefined;
  const logger = createConsoleLogger({
    level: config.LOG_LEVEL,
    fields: { service: "heimdall" },
    sink: createStdoutLines().write,
  });
  const clock = systemClock;

  const db = config.DATABASE_URL
    ? await createPostgresDatabase({
        url: config.DATABASE_URL,
        migrationsFolder,
        // An unreachable or silent database fails requests (503) in seconds instead of hanging
        // them: 3 s to get a connection (the health check's bound), 5 s for a query's answer.
        timeouts: { connectMs: 3_000, queryMs: 5_000 },
        onIdleError: (error) => logger.warn("idle database connection lost", { error }),
      })
    : await createPgliteDatabase({ dataDir: join(config.DATA_DIR, "pglite"), migrationsFolder });
  const {
    cache,
    revocations,
    limiter,
    close: closeCache,
  } = createCacheAdapters(config, clock, {
    connectRedis: (url) => createNodeRedis({ url, logger }),
  });
  const geoip = config.GEOIP_DATABASE_PATH
    ? await createMaxmindGeoIp({
        databasePath: config.GEOIP_DATABASE_PATH,
        exclusions: config.GEOIP_PRIVACY_EXCLUSIONS_ENABLED
          ? { path: config.GEOIP_PRIVACY_EXCLUSIONS_CACHE_PATH }
          : undefined,
        logger,
      })
    : noGeoIp;
  const secrets = await resolvePlatformSecrets(db.session().db, config);
  if (secrets.generatedAdminKey) printAdminKeyOnce(secrets.generatedAdminKey);

  const hub = createLiveHub(() => ({ ports, services }), {
    sweepMs: config.LIVE_SWEEP_SECONDS * 1000,
  });
  const ports: Ports = {
    config,
    db,
    revocations,
    limiter,
    realtime: hub,
    secrets,
    passwords: createPasswordHasher(nodeArgon2, {
      memoryCost: config.PASSWORD_HASH_MEMORY_KIB,
      timeCost: config.PASSWORD_HASH_ITERATIONS,
    }),
    clientIp: (request, env) =>
      clientIpOf(
        (env as NodeBindings).incoming?.socket.remoteAddress,
        (name) => request.headers.get(name) ?? undefined,
        config.TRUST_PROXY,
      ),
    geoip,
    outboundNetwork: createNodeOutboundNetwork(),
    email: emailSenderFor(config, logger, { smtp: createSmtpEmailSender }),
    breachedPasswords: createPwnedPasswords({ baseUrl: config.BREACHED_PASSWORDS_API_URL, logger }),
    errors: sentry ?? noErrorReporter,
    clock,
    logger,
  };
  const services = createServices(ports);
  const app = createApp(ports, {
    services,
    consoleAssets: serveStatic({
      root: consoleBuild,
      // Vite names every file under assets/ by its content hash.
      onFound: (path, c) => {
        if (path.includes("/assets/"))
          c.header("Cache-Control", "public, max-age=31536000, immutable");
      },
    }),
  });
  const server = serve({ fetch: app.fetch, port: config.PORT }, (info) => {
    logger.info("listening", {
      url: `http://localhost:${info.port}`,
      port: info.port,
      database: db.driver,
      cache,
    });
  });
  hub.attach(server as Server);
  const fanout = config.REDIS_URL
    ? await createRedisFanout({
        url: config.REDIS_URL,
        logger,
        deliver: hub.deliverLocally,
      })
    : undefined;
  if (fanout) hub.fanOutWith(fanout.publish);

  const schedule = setInterval(
    () => void runScheduledJobs(services, ports.db),
    config.SCHEDULE_INTERVAL_SECONDS * 1000,
  );
  schedule.unref();

  const shutdown = (signal: string) => {
    logger.info("shutting down", { signal });
    clearInterval(schedule);
    void hub.close();
    void fanout?.close();
    server.close(() => {
      void Promise.allSettled([db.close(), closeCache(), sentry?.flush(2000)]).finally(() =>
        process.exit(0),
      );
    });
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

/** What @hono/node-server passes as the app's `env`. */
type NodeBindings = { incoming?: IncomingMessage };

/** The generated key is shown on this first start only; the database keeps just its hash. */
function printAdminKeyOnce(key: string) {
  console.log(
    [
      "",
      "  Heimdall generated a platform admin API key. It is shown once; store it now:",
      "",
      `    ${key}`,
      "",
      "  Use it as `Authorization: Bearer <key>`. Set ADMIN_API_KEY to choose your own.",
      "",
    ].join("\n"),
  );
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    console.error("heimdall failed to start:", error);
  }
  process.exit(1);
});
