import type { RequestIdVariables } from "hono/request-id";
import type { Database, Logger, Ports } from "./ports";

export interface AppVariables extends RequestIdVariables {
  ports: Ports;
  /** The request's logger: every event carries its `request_id`. */
  logger: Logger;
  /** The request's database handle, opened on first use and released when the response is done. */
  db: () => Database;
}

/** The one environment type of every router and middleware. */
export interface AppEnv {
  Variables: AppVariables;
}
