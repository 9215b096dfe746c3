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
  /** Errors of idle connections (the server restarted, a connection was killed). */
  onIdleError?: (error: Error) => void;
}): Promise<DatabasePort> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 10 });
  // Without a listener, an idle connection dropped by the server would crash the process; the
  // pool replaces it on the next query.
  pool.on("error", (error) => options.onIdleError?.(error));
  const db = drizzle(pool, { schema });
  await migrate(db, { migrationsFolder: options.migrationsFolder });
  const session = { db, release: async () => {} };
  return {
    driver: "postgres",
    session: () => session,
    close: () => pool.end(),
  };
}
