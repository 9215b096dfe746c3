import { type FullQueryResults, neon, neonConfig, Pool } from "@neondatabase/serverless";
import {
  createTableRelationsHelpers,
  type ExtractTablesWithRelations,
  extractTablesRelationalConfig,
  type RelationalSchemaConfig,
} from "drizzle-orm";
import { NeonDatabase, NeonSession, type NeonTransaction } from "drizzle-orm/neon-serverless";
import { PgDialect, type PgTransactionConfig } from "drizzle-orm/pg-core";
import { statementsShared } from "../../db/prepared";
import * as schema from "../../db/schema";
import type { Database, DatabasePort } from "../../ports/database";

export interface NeonOptions {
  url: string;
  /**
   * A proxy in front of a plain Postgres that serves Neon's WebSocket and SQL-over-HTTP ways in
   * (`ws://127.0.0.1:8788/v1`, scripts/neon-proxy.ts), for `wrangler dev` and tests. Neon's own
   * endpoints need none.
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

type Tables = ExtractTablesWithRelations<typeof schema>;

/**
 * Neon serverless Postgres. A statement outside a transaction is one HTTPS request to Neon's SQL
 * endpoint, with no connection to open; a transaction runs on a WebSocket connection (Postgres's
 * own protocol), opened by the session's first transaction. In Workers a connection cannot outlive
 * the request that opened it, so every session gets its own pool, ended by `release()`. What
 * drizzle derives from the schema (the relational config, the dialect) is built once per port:
 * `drizzle()` would walk every table again for each session, that is for each request.
 */
export function createNeonDatabase(options: NeonOptions): DatabasePort {
  configureNeon(options);
  const dialect = new PgDialect();
  const tables = extractTablesRelationalConfig<Tables>(schema, createTableRelationsHelpers);
  const relational: RelationalSchemaConfig<Tables> = {
    fullSchema: schema,
    schema: tables.tables,
    tableNamesMap: tables.tableNamesMap,
  };
  const overHttp = sqlOverHttp(options);
  return {
    driver: "neon",
    sharedAcrossRequests: false,
    session() {
      let pool: Pool | undefined;
      const connections = () => {
        pool ??= new Pool({
          connectionString: options.url,
          connectionTimeoutMillis: options.timeouts?.connectMs,
          query_timeout: options.timeouts?.queryMs,
        });
        return pool;
      };
      const session = overHttp
        ? new HttpFirstSession(overHttp, connections, dialect, relational)
        : new NeonSession(connections(), dialect, relational);
      const db: Database = new NeonDatabase(dialect, session, relational);
      // Outside a transaction every session's statements go to `overHttp`.
      if (overHttp) Object.defineProperty(db, statementsShared, { value: overHttp });
      return { db, release: async () => pool?.end() };
    },
    close: async () => {},
  };
}

/**
 * Drizzle's Neon session with its statements sent over HTTP and its transactions on the
 * session's pool. Outside a transaction drizzle's session calls only its client's
 * `query(config, values)`, which `overHttp` answers as the pool would.
 */
class HttpFirstSession extends NeonSession<typeof schema, Tables> {
  constructor(
    overHttp: Pick<Pool, "query">,
    private readonly connections: () => Pool,
    private readonly pgDialect: PgDialect,
    private readonly relational: RelationalSchemaConfig<Tables>,
  ) {
    super(overHttp as Pool, pgDialect, relational);
  }

  override transaction<T>(
    transaction: (tx: NeonTransaction<typeof schema, Tables>) => Promise<T>,
    config?: PgTransactionConfig,
  ): Promise<T> {
    const session = new NeonSession<typeof schema, Tables>(
      this.connections(),
      this.pgDialect,
      this.relational,
    );
    return session.transaction(transaction, config);
  }
}

interface PoolQuery {
  text: string;
  values?: unknown[];
  rowMode?: "array";
  types?: { getTypeParser(oid: number, format?: string): (value: string) => unknown };
}

/**
 * A pool's `query(config, values)` over Neon's SQL-over-HTTP endpoint, with the same row mode
 * and type parsers, bounded by `connectMs + queryMs` (Neon opens the connection behind it). Absent
 * where there is no such endpoint: without a local proxy, an address that is not a Neon host name
 * (an IP, `localhost`) has none.
 */
function sqlOverHttp(options: NeonOptions): Pick<Pool, "query"> | undefined {
  const { hostname } = new URL(options.url);
  const ipOrLocalhost =
    hostname === "localhost" || hostname.startsWith("[") || /^[\d.]+$/.test(hostname);
  if (!options.wsProxy && ipOrLocalhost) return undefined;
  const http = neon(options.url, { fullResults: true });
  const boundMs = options.timeouts && options.timeouts.connectMs + options.timeouts.queryMs;
  const query = (
    config: string | PoolQuery,
    values?: unknown[],
  ): Promise<FullQueryResults<boolean>> => {
    const {
      text,
      rowMode,
      types,
      values: own,
    }: PoolQuery = typeof config === "string" ? { text: config } : config;
    return http.query(text, values ?? own ?? [], {
      arrayMode: rowMode === "array",
      fullResults: true,
      types,
      fetchOptions: boundMs ? { signal: AbortSignal.timeout(boundMs) } : undefined,
    });
  };
  return { query } as unknown as Pick<Pool, "query">;
}

/** Neon's driver reads its transport settings from one module-wide object. */
export function configureNeon(options: NeonOptions) {
  if (options.webSocketConstructor) neonConfig.webSocketConstructor = options.webSocketConstructor;
  if (options.wsProxy) {
    const proxy = new URL(options.wsProxy);
    const base = `${proxy.host}${proxy.pathname.replace(/\/$/, "")}`;
    neonConfig.wsProxy = (host, port) => `${base}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = proxy.protocol === "wss:";
    neonConfig.fetchEndpoint = `${proxy.protocol === "wss:" ? "https:" : "http:"}//${proxy.host}/sql`;
    // A plain Postgres rejects the pipelined cleartext password Neon's proxy would accept.
    neonConfig.pipelineConnect = false;
    neonConfig.pipelineTLS = false;
  }
}
