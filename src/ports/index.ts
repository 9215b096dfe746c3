import type { Config } from "../config";
import type { BreachedPasswords } from "./breached-passwords";
import type { Clock } from "./clock";
import type { DatabasePort } from "./database";
import type { EmailSender } from "./email";
import type { ErrorReporter } from "./error-reporter";
import type { GeoIp } from "./geoip";
import type { Limiter } from "./limiter";
import type { Logger } from "./logger";
import type { OutboundNetwork } from "./outbound";
import type { PasswordHasher } from "./passwords";
import type { Realtime } from "./realtime";
import type { RevocationStore } from "./revocations";

export type { BreachedPasswords } from "./breached-passwords";
export type { Clock } from "./clock";
export type { Database, DatabasePort, DatabaseSession } from "./database";
export type { EmailMessage, EmailSender } from "./email";
export type { ErrorContext, ErrorReporter } from "./error-reporter";
export type { GeoIp, GeoLocation } from "./geoip";
export type { Limiter, RateLimitResult, RateLimitRule } from "./limiter";
export type { Logger, LogLevel } from "./logger";
export type { OutboundNetwork } from "./outbound";
export type { PasswordHasher } from "./passwords";
export type { LiveEvent, Realtime } from "./realtime";
export type { RevocationStore, TokenRevocationQuery } from "./revocations";

/**
 * Everything the app needs from the outside world; each runtime entry builds its own set, and
 * the app builds its services from it (src/services/context.ts).
 */
export interface Ports {
  config: Config;
  /** The platform's own secrets: the admin key's hash and the key-encryption secret. */
  secrets: { adminKeyHash: string; keyEncryptionSecret: string };
  db: DatabasePort;
  limiter: Limiter;
  revocations: RevocationStore;
  /** Live fan-out of positions and device status (Durable Object room or in-process hub). */
  realtime: Realtime;
  /** Argon2id on the runtime's WebAssembly engine. */
  passwords: PasswordHasher;
  /** The caller's IP address as the runtime knows it (Cloudflare's header, Node's socket). */
  clientIp: (request: Request, env: unknown) => string | undefined;
  /** Where audit events and sessions come from (GeoIP); answers null when it cannot tell. */
  geoip: GeoIp;
  /** Connections to addresses a tenant chose, as the runtime makes them (DNS, sockets). */
  outboundNetwork: OutboundNetwork;
  /** Hands mail from the outbox to SMTP, a provider's API, or the log. */
  email: EmailSender;
  /** The breached-password check apps may turn on (k-anonymity range API). */
  breachedPasswords: BreachedPasswords;
  /** Server errors (5xx, unhandled) beyond the log: Sentry when configured. */
  errors: ErrorReporter;
  clock: Clock;
  logger: Logger;
}
