import type { Config } from "../config";
import type { apps, auditLogs, serviceCredentials } from "../db/schema";
import { type Cipher, createCipher } from "../lib/crypto";
import type {
  BreachedPasswords,
  Clock,
  Database,
  EmailSender,
  ErrorReporter,
  GeoIp,
  GeoLocation,
  Limiter,
  Logger,
  Ports,
  Realtime,
  RevocationStore,
} from "../ports";
import type { PasswordHasher } from "../ports/passwords";
import { type ApiKeyVerifier, createApiKeyVerifier } from "./api-key-verifier";
import { type AuditLog, createAuditLog } from "./audit-log";
import { type BruteForceGuard, createBruteForceGuard } from "./brute-force";
import { type CredentialUsage, createCredentialUsage } from "./credential-usage";
import { createDeviceVerifier, type DeviceVerifier } from "./device-verifier";
import { failOpen } from "./fail-open-limiter";
import { createIpBanList, type IpBanList } from "./ip-ban-list";
import { createKeyRing, type KeyRing } from "./keys";
import { createOutboundPolicy, type OutboundPolicy } from "./outbound";
import type { Grantor } from "./permissions";
import { createRecordCache, type RecordCache } from "./record-cache";
import { createVerifiedTokens, type VerifiedTokens } from "./verified-tokens";

export type AuditActorType = (typeof auditLogs.$inferInsert)["actor_type"];

/** Who did something and from where; built once per request. */
export interface AuditSource {
  actorType: AuditActorType;
  actorId: string | null;
  ipAddress: string | null;
  userAgent: string | null;
  /** Where the request came from (GeoIP), looked up on first use. */
  location?: () => GeoLocation | null;
}

/**
 * What services work with, built once per process (Node) or isolate (Workers) from the ports:
 * the outside world they use, and the app services made from it (the key ring, the credential
 * verifiers and their caches, the ban list, the outbound policy).
 */
export interface Services {
  config: Config;
  clock: Clock;
  logger: Logger;
  limiter: Limiter;
  revocations: RevocationStore;
  /** Live fan-out of positions and device status (Durable Object room or in-process hub). */
  realtime: Realtime;
  geoip: GeoIp;
  errors: ErrorReporter;
  passwords: PasswordHasher;
  email: EmailSender;
  breachedPasswords: BreachedPasswords;
  /** Per-app JWT signing keys (private halves encrypted with KEY_ENCRYPTION_SECRET). */
  keys: KeyRing;
  /** Access tokens whose signature verified in this process (a token's later uses skip it). */
  verifiedTokens: VerifiedTokens;
  /** Verifies `pk_…` API keys (cached per isolate) and batches their `last_used_at`. */
  apiKeys: ApiKeyVerifier;
  /** Apps by lower-cased name (cached per isolate; every write of an app goes through it). */
  appsByName: RecordCache<typeof apps.$inferSelect>;
  /** Service credentials by client id (cached per isolate, like {@link appsByName}). */
  credentialsByClientId: RecordCache<typeof serviceCredentials.$inferSelect>;
  /** Batches the service credentials' `last_used_at`. */
  credentialUsage: CredentialUsage;
  /** Resolves `dk_…` device secrets (cached per isolate). */
  devices: DeviceVerifier;
  /** Active IP bans, cached per isolate. */
  ipBans: IpBanList;
  /** Encrypts what Heimdall must read back later (a refresh token's successor). */
  sealer: Cipher;
  /** The one way to fetch a URL a tenant chose (platform discovery, JWKS, token endpoints). */
  outbound: OutboundPolicy;
  /** Lockouts of accounts, second factors and IPs after repeated failures. */
  bruteForce: BruteForceGuard;
  /** SHA-256 (hex) of the platform admin key. */
  adminKeyHash: string;
  /** Group-commits the audit events no transaction carries (`recordAudit`, audit.ts). */
  auditLog: AuditLog;
}

/**
 * The one argument every service gets first: the services, and the request it works for (its
 * database handle, who is acting and from where, whose permissions may be handed out). Outside
 * a request (scheduled jobs, live sockets) {@link systemContext} builds one.
 */
export interface ServiceContext extends Services {
  db: Database;
  audit: AuditSource;
  grantor: Grantor;
}

export function createServices(ports: Ports): Services {
  const { config, clock, logger, revocations, secrets } = ports;
  return {
    config,
    clock,
    logger,
    limiter: ports.limiter,
    revocations,
    realtime: ports.realtime,
    geoip: ports.geoip,
    errors: ports.errors,
    passwords: ports.passwords,
    email: ports.email,
    breachedPasswords: ports.breachedPasswords,
    keys: createKeyRing({
      cipher: createCipher(secrets.keyEncryptionSecret, "signing-keys"),
      clock,
    }),
    verifiedTokens: createVerifiedTokens(),
    apiKeys: createApiKeyVerifier({ clock, revocations }),
    appsByName: createRecordCache({
      kind: "app",
      idOf: (app) => app.id,
      clock,
      revocations,
      logger,
    }),
    credentialsByClientId: createRecordCache({
      kind: "credential",
      idOf: (credential) => credential.id,
      clock,
      revocations,
      logger,
    }),
    credentialUsage: createCredentialUsage({ clock }),
    devices: createDeviceVerifier({ clock }),
    ipBans: createIpBanList({ clock, logger }),
    sealer: createCipher(secrets.keyEncryptionSecret, "sealed-secrets"),
    outbound: createOutboundPolicy({
      allowlist: config.OUTBOUND_ALLOWLIST,
      network: ports.outboundNetwork,
      clock,
    }),
    bruteForce: createBruteForceGuard({
      config,
      limiter: failOpen(ports.limiter, logger),
      revocations,
      clock,
    }),
    adminKeyHash: secrets.adminKeyHash,
    auditLog: createAuditLog({ database: ports.db }),
  };
}

const systemSource: AuditSource = {
  actorType: "system",
  actorId: null,
  ipAddress: null,
  userAgent: null,
};

/**
 * A context for work no request asked for: acted by the system, granting nothing. `db` is read
 * through `database` on first use (not enumerable, like a request's).
 */
export function systemContext(services: Services, database: () => Database): ServiceContext {
  const grantor: Grantor = { kind: "app", permissions: [] };
  // On top of `services`, which may be a request's context (its services are its prototype).
  return Object.create(services, {
    audit: { value: systemSource, enumerable: true },
    grantor: { value: grantor, enumerable: true },
    db: { get: database, enumerable: false },
  }) as ServiceContext;
}
