import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type * as schema from "../db/schema";

/** Drizzle over any of the Postgres drivers Heimdall runs on (PGlite, node-postgres, Neon). */
export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/** A database handle that is valid for one request. */
export interface DatabaseSession {
  readonly db: Database;
  /** Gives back what the session holds; Workers cannot keep a connection past its request. */
  release(): Promise<void>;
}

export interface DatabasePort {
  /** Which driver is behind the port, for logs and health output. */
  readonly driver: "pglite" | "postgres" | "neon";
  /**
   * Whether work started by one request may be awaited by another: true for a process's pool or
   * embedded database; false on Workers, where I/O belongs to the request that started it and is
   * cancelled with it.
   */
  readonly sharedAcrossRequests: boolean;
  session(): DatabaseSession;
  close(): Promise<void>;
}

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
