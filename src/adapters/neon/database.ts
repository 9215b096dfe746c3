import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle } from "drizzle-orm/neon-serverless";
import * as schema from "../../db/schema";
import type { DatabasePort } from "../../ports/database";

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
 * that opened it, so every session gets its own pool, ended by `release()`.
 */
export function createNeonDatabase(options: NeonOptions): DatabasePort {
  configureNeon(options);
  return {
    driver: "neon",
    sharedAcrossRequests: false,
    session() {
      const pool = new Pool({
        connectionString: options.url,
        connectionTimeoutMillis: options.timeouts?.connectMs,
        query_timeout: options.timeouts?.queryMs,
      });
      return { db: drizzle(pool, { schema }), release: () => pool.end() };
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
