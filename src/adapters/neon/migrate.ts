import { Pool } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import { migrate } from "drizzle-orm/neon-serverless/migrator";
import { configureNeon, type NeonOptions } from "./database";

/** Applies `drizzle/` through the Neon driver (Node only: the migrator reads files). */
export async function migrateNeon(options: NeonOptions & { migrationsFolder: string }) {
  configureNeon(options);
  const pool = new Pool({ connectionString: options.url });
  try {
    await migrate(drizzle(pool), { migrationsFolder: options.migrationsFolder });
  } finally {
    await pool.end();
  }
}
