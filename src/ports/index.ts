import type { Config } from "../config";
import type { Clock } from "./clock";
import type { DatabasePort } from "./database";
import type { Limiter } from "./limiter";
import type { Logger } from "./logger";
import type { RevocationStore } from "./revocations";

export type { Clock } from "./clock";
export type { Database, DatabasePort, DatabaseSession } from "./database";
export type { Limiter, RateLimitResult, RateLimitRule } from "./limiter";
export type { Logger, LogLevel } from "./logger";
export type { RevocationStore } from "./revocations";

/** Everything the app needs from the outside world; each runtime entry builds its own set. */
export interface Ports {
  config: Config;
  db: DatabasePort;
  limiter: Limiter;
  revocations: RevocationStore;
  clock: Clock;
  logger: Logger;
}
