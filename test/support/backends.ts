import { createPostgresDatabase } from "../../src/adapters/postgres/database";
import type { DatabasePort } from "../../src/ports";
import { createMemoryDatabase, migrationsFolder } from "./app";
import { createTestDatabase } from "./postgres";
import { announceSkip, services } from "./services";

export interface DatabaseBackend {
  name: "PGlite" | "Postgres";
  /** A fresh, migrated database; `dispose` closes it (and drops it on Postgres). */
  open(): Promise<{ db: DatabasePort; dispose(): Promise<void> }>;
}

/**
 * The databases a whole-API suite runs on, for `describe.each`: embedded PGlite always, and the
 * real Postgres server when `TEST_DATABASE_URL` is set (always in CI); without it, `part` is
 * announced as skipped.
 */
export function databaseBackends(part: string): DatabaseBackend[] {
  const backends: DatabaseBackend[] = [
    {
      name: "PGlite",
      async open() {
        const db = await createMemoryDatabase();
        return { db, dispose: () => db.close() };
      },
    },
  ];
  const serverUrl = services.postgres;
  if (!serverUrl) {
    announceSkip(`${part} on real Postgres`, "TEST_DATABASE_URL");
    return backends;
  }
  backends.push({
    name: "Postgres",
    async open() {
      const database = await createTestDatabase(serverUrl);
      const db = await createPostgresDatabase({ url: database.url, migrationsFolder });
      return {
        db,
        dispose: async () => {
          await db.close();
          await database.drop();
        },
      };
    },
  });
  return backends;
}
