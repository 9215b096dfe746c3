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
}): Promise<DatabasePort> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.maxConnections ?? 10 });
  const db = drizzle(pool, { schema });
  await migrate(db, { migrationsFolder: options.migrationsFolder });
  const session = { db, release: async () => {} };
  return {
    driver: "postgres",
    session: () => session,
    close: () => pool.end(),
  };
}
