import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import * as schema from "../../db/schema";
import type { DatabasePort } from "../../ports/database";

/** Postgres over TCP (node-postgres) for the Node entry when `DATABASE_URL` is set. */
export async function createPostgresDatabase(options: {
  url: string;
  migrationsFolder: string;
  maxConnections?: number;
  /**
   * How long to wait for a connection (a new one, or a free one of the pool) and for a query's
   * answer, so an unreachable or silent server fails requests instead of hanging them. Unset,
   * node-postgres waits forever. Migrations, which may run long, are bound by `connectMs` only.
   */
  timeouts?: { connectMs: number; queryMs: number };
  /** Errors of idle connections (the server restarted, a connection was killed). */
  onIdleError?: (error: Error) => void;
}): Promise<DatabasePort> {
  const connectionTimeoutMillis = options.timeouts?.connectMs;
  const migrator = new pg.Client({ connectionString: options.url, connectionTimeoutMillis });
  await migrator.connect();
  try {
    await migrate(drizzle(migrator, { schema }), { migrationsFolder: options.migrationsFolder });
  } finally {
    await migrator.end();
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis,
    query_timeout: options.timeouts?.queryMs,
  });
  // Without a listener, an idle connection dropped by the server would crash the process; the
  // pool replaces it on the next query.
  pool.on("error", (error) => options.onIdleError?.(error));
  const session = { db: drizzle(pool, { schema }), release: async () => {} };
  return {
    driver: "postgres",
    sharedAcrossRequests: true,
    session: () => session,
    close: () => pool.end(),
  };
}
