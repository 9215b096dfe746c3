import type { RequestIdVariables } from "hono/request-id";
import type { Database, Logger, Ports } from "../ports";
import type { AppRecord } from "../services/apps";
import type { ServiceContext } from "../services/context";
import type { DeviceIdentity } from "../services/device-verifier";
import type { Subject } from "../services/subject";

/**
 * What a request carries through its middleware and handler. Hot code reads it with
 * `c.get(name)`: Hono's `c.var` builds an object of every variable on each read.
 */
export interface AppVariables extends RequestIdVariables {
  ports: Ports;
  /** What every service call gets first: the services, and this request's db, audit source and grantor. */
  services: ServiceContext;
  /** The request's logger: every event carries its `request_id`. */
  logger: Logger;
  /** The request's database handle, opened on first use and released when the response is done. */
  db: () => Database;
  /** Who is calling, once `guard()` or `authenticate()` has run. */
  subject?: Subject;
  /** `authenticate()`'s one attempt of the request, kept for whoever asks next. */
  authentication?: Promise<Subject>;
  /** The request's `Authorization` header once `authorizationOf()` has read it; null when absent. */
  authorizationHeader?: string | null;
  /** The client's address once `clientAddressOf()` has derived it; null when the runtime knows none. */
  clientAddress?: string | null;
  /** The app a guarded route works on. */
  app?: AppRecord;
  /** The device whose secret authenticated an ingest request. */
  device?: DeviceIdentity;
  /** `deviceOf()`'s one lookup of the request's device secret; null when it carries none. */
  deviceLookup?: Promise<DeviceIdentity | undefined> | null;
  /**
   * Charges `count` more requests to the caller's rate limit (429 once it is spent); set by
   * `rateLimiting()` when limiting is on.
   */
  chargeRateLimit?: (count: number) => Promise<void>;
  /** Set when the answer is a 5xx caused outside Heimdall (`ApiError`'s `external`): logged as a warning. */
  externalFailure?: boolean;
}

/** The one environment type of every router and middleware. */
export interface AppEnv {
  Variables: AppVariables;
}
