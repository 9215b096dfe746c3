import type { Database, DatabasePort, DatabaseSession } from "../ports/database";

/**
 * Runs `work` outside a request with a database handle opened on first use and released after,
 * so work that never reads the database opens nothing.
 */
export async function withDatabase<T>(
  port: DatabasePort,
  work: (db: () => Database) => Promise<T>,
): Promise<T> {
  let session: DatabaseSession | undefined;
  try {
    return await work(() => {
      session ??= port.session();
      return session.db;
    });
  } finally {
    await session?.release();
  }
}
