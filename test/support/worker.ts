import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { unstable_startWorker } from "wrangler";
import { startNeonProxy } from "../../scripts/neon-proxy";
import { migrationsFolder } from "./app";
import { createTestDatabase } from "./postgres";

process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
// wrangler's local trace collector stores every span of every request in SQLite inside the
// Worker's own workerd process: dev tooling Cloudflare does not run, costing more CPU than most
// requests themselves.
process.env.X_LOCAL_OBSERVABILITY ??= "false";
process.env.WRANGLER_LOG ??= "error";

export type Worker = Awaited<ReturnType<typeof unstable_startWorker>>;

/**
 * Starts `wrangler.toml`'s Worker inside workerd with `settings` as its vars; its outbound
 * traffic (Postgres through the Neon proxy, Upstash) is real. `port` 0 picks a free one;
 * `testScheduled` serves `GET /__scheduled`, which runs the cron handler.
 */
export async function startWorker(
  settings: Record<string, string>,
  port = 0,
  { testScheduled = false } = {},
): Promise<Worker> {
  const worker = await unstable_startWorker({
    config: "wrangler.toml",
    bindings: Object.fromEntries(
      Object.entries({ LOG_LEVEL: process.env.WORKER_LOG_LEVEL ?? "error", ...settings }).map(
        ([name, value]) => [name, { type: "plain_text" as const, value }],
      ),
    ),
    dev: { server: { hostname: "127.0.0.1", port }, inspector: false, watch: false, testScheduled },
  });
  await worker.ready;
  return worker;
}

/**
 * A fresh, migrated Postgres database the Worker reaches as it would reach Neon: the settings
 * to give it, and how to drop it afterwards.
 */
export async function createWorkerDatabase(serverUrl: string) {
  const database = await createTestDatabase(serverUrl);
  const pool = new pg.Pool({ connectionString: database.url });
  await migrate(drizzle(pool), { migrationsFolder });
  await pool.end();
  const proxy = await startNeonProxy();
  return {
    settings: { DATABASE_URL: database.url, NEON_WS_PROXY: proxy.url },
    async close() {
      await proxy.close();
      await database.drop();
    },
  };
}
