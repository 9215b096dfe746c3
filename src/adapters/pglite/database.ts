import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import * as schema from "../../db/schema";
import type { DatabasePort } from "../../ports/database";

/**
 * Embedded Postgres (PGlite, WebAssembly) persisted in a directory, or `memory://` for tests.
 * One connection shared by every request: PGlite is single-user and in-process.
 */
export async function createPgliteDatabase(options: {
  dataDir: string;
  migrationsFolder: string;
}): Promise<DatabasePort> {
  if (!options.dataDir.startsWith("memory://")) await mkdir(options.dataDir, { recursive: true });
  const client = await PGlite.create(options.dataDir);
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: options.migrationsFolder });
  const session = { db, release: async () => {} };
  return {
    driver: "pglite",
    sharedAcrossRequests: true,
    session: () => session,
    close: () => client.close(),
  };
}
