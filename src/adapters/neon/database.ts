import { neonConfig, Pool } from "@neondatabase/serverless";
import {
  createTableRelationsHelpers,
  type ExtractTablesWithRelations,
  extractTablesRelationalConfig,
} from "drizzle-orm";
import { NeonDatabase, NeonDriver } from "drizzle-orm/neon-serverless";
import { PgDialect } from "drizzle-orm/pg-core";
import * as schema from "../../db/schema";
import type { Database, DatabasePort } from "../../ports/database";

export interface NeonOptions {
  url: string;
  /**
   * A WebSocket-to-TCP proxy in front of a plain Postgres (`ws://127.0.0.1:8788/v1`), for
   * `wrangler dev` and tests. Neon's own endpoints need none.
   */
  wsProxy?: string;
  /** Where the runtime has no global WebSocket (Node < 22): the `ws` package's class. */
  webSocketConstructor?: typeof WebSocket;
  /**
   * How long to wait for a connection and for a query's answer, so an unreachable or silent
   * database fails a request (503) instead of holding it open. Unset, the driver waits forever.
   */
  timeouts?: { connectMs: number; queryMs: number };
}

/**
 * Neon serverless Postgres over WebSockets. In Workers a connection cannot outlive the request
 * that opened it, so every session gets its own pool, ended by `release()`. What drizzle derives
 * from the schema (the relational config, the dialect) is built once per port: `drizzle()`
 * would walk every table again for each session, that is for each request.
 */
export function createNeonDatabase(options: NeonOptions): DatabasePort {
  configureNeon(options);
  const dialect = new PgDialect();
  const tables = extractTablesRelationalConfig<ExtractTablesWithRelations<typeof schema>>(
    schema,
    createTableRelationsHelpers,
  );
  const relational = {
    fullSchema: schema,
    schema: tables.tables,
    tableNamesMap: tables.tableNamesMap,
  };
  return {
    driver: "neon",
    sharedAcrossRequests: false,
    session() {
      const pool = new Pool({
        connectionString: options.url,
        connectionTimeoutMillis: options.timeouts?.connectMs,
        query_timeout: options.timeouts?.queryMs,
      });
      const session = new NeonDriver(pool, dialect).createSession(relational);
      const db: Database = new NeonDatabase(dialect, session, relational);
      return { db, release: () => pool.end() };
    },
    close: async () => {},
  };
}

/** Neon's driver reads its transport settings from one module-wide object. */
export function configureNeon(options: NeonOptions) {
  if (options.webSocketConstructor) neonConfig.webSocketConstructor = options.webSocketConstructor;
  if (options.wsProxy) {
    const proxy = new URL(options.wsProxy);
    const base = `${proxy.host}${proxy.pathname.replace(/\/$/, "")}`;
    neonConfig.wsProxy = (host, port) => `${base}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = proxy.protocol === "wss:";
    // A plain Postgres rejects the pipelined cleartext password Neon's proxy would accept.
    neonConfig.pipelineConnect = false;
    neonConfig.pipelineTLS = false;
  }
}
