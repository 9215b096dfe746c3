import type { Config } from "../config";
import type { Cipher } from "../lib/crypto";
import type { PasswordHasher } from "../lib/password";
import type { ApiKeyVerifier } from "../services/api-keys";
import type { IpBanList } from "../services/bans";
import type { DeviceVerifier } from "../services/devices";
import type { KeyRing } from "../services/keys";
import type { OutboundPolicy } from "../services/outbound";
import type { Clock } from "./clock";
import type { DatabasePort } from "./database";
import type { ErrorReporter } from "./error-reporter";
import type { GeoIp } from "./geoip";
import type { Limiter } from "./limiter";
import type { Logger } from "./logger";
import type { Realtime } from "./realtime";
import type { RevocationStore } from "./revocations";

export type { Clock } from "./clock";
export type { Database, DatabasePort, DatabaseSession } from "./database";
export type { ErrorContext, ErrorReporter } from "./error-reporter";
export type { GeoIp, GeoLocation } from "./geoip";
export type { Limiter, RateLimitResult, RateLimitRule } from "./limiter";
export type { Logger, LogLevel } from "./logger";
export type { OutboundNetwork } from "./outbound";
export type { LiveEvent, Realtime } from "./realtime";
export type { RevocationStore, TokenRevocationQuery } from "./revocations";

/** Everything the app needs from the outside world; each runtime entry builds its own set. */
export interface Ports {
  config: Config;
  db: DatabasePort;
  limiter: Limiter;
  revocations: RevocationStore;
  /** Live fan-out of positions and device status (Durable Object room or in-process hub). */
  realtime: Realtime;
  /** Per-app JWT signing keys (private halves encrypted with KEY_ENCRYPTION_SECRET). */
  keys: KeyRing;
  passwords: PasswordHasher;
  /** Verifies `pk_…` API keys (cached per isolate) and batches their `last_used_at`. */
  apiKeys: ApiKeyVerifier;
  /** Resolves `dk_…` device secrets (cached per isolate). */
  devices: DeviceVerifier;
  /** Active IP bans, cached per isolate. */
  ipBans: IpBanList;
  /** Encrypts what Heimdall must read back later (a refresh token's successor). */
  sealer: Cipher;
  /** SHA-256 (hex) of the platform admin key. */
  adminKeyHash: string;
  /** The caller's IP address as the runtime knows it (Cloudflare's header, Node's socket). */
  clientIp: (request: Request, env: unknown) => string | undefined;
  /** Where audit events and sessions come from (GeoIP); answers null when it cannot tell. */
  geoip: GeoIp;
  /** The one way to fetch a URL a tenant chose (platform discovery, JWKS, token endpoints). */
  outbound: OutboundPolicy;
  /** Server errors (5xx, unhandled) beyond the log: Sentry when configured. */
  errors: ErrorReporter;
  clock: Clock;
  logger: Logger;
}
