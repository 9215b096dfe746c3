import { and, eq, isNull } from "drizzle-orm";
import { apiKeys, roles } from "../db/schema";
import { sha256Hex } from "../lib/crypto";
import { createTtlCache } from "../lib/ttl-cache";
import type { Clock, Database, RevocationStore } from "../ports";
import { checkRevoked } from "./revocation-status";

export const API_KEY_PREFIX = "pk_";
const CACHE_TTL_MS = 30_000;
const MAX_CACHED = 10_000;
const USAGE_FLUSH_MS = 60_000;

/** What an API key may do, as cached per isolate. */
export interface ApiKeyGrant {
  keyId: string;
  appId: string;
  createdAt: Date;
  expiresAt: Date | null;
  roles: string[];
  permissions: string[];
}

/**
 * Verifies `pk_…` keys with a per-isolate cache (30 s), so a busy key reads the database twice
 * a minute, and records `last_used_at` in batches (at most one write round a minute), not per
 * request. Revocation is immediate through the revocation store.
 */
export function createApiKeyVerifier(deps: { clock: Clock; revocations: RevocationStore }) {
  const cache = createTtlCache<ApiKeyGrant | null>({
    ttlMs: CACHE_TTL_MS,
    maxEntries: MAX_CACHED,
    now: () => deps.clock.now().getTime(),
  });
  const usage = new Map<string, Date>();
  let flushedAt = deps.clock.now().getTime();

  async function load(db: Database, hash: string): Promise<ApiKeyGrant | null> {
    const [row] = await db
      .select({ key: apiKeys, role: roles })
      .from(apiKeys)
      .innerJoin(roles, eq(roles.id, apiKeys.role_id))
      .where(and(eq(apiKeys.key_hash, hash), isNull(apiKeys.revoked_at)))
      .limit(1);
    if (!row) return null;
    return {
      keyId: row.key.id,
      appId: row.key.app_id,
      createdAt: row.key.created_at,
      expiresAt: row.key.expires_at,
      roles: [row.role.name],
      permissions: row.role.permissions,
    };
  }

  return {
    /** The grant of a key, or undefined when unknown, expired or revoked. */
    async verify(db: () => Database, key: string): Promise<ApiKeyGrant | undefined> {
      if (!key.startsWith(API_KEY_PREFIX)) return undefined;
      const now = deps.clock.now();
      const hash = await sha256Hex(key);
      const grant = await cache.get(hash, () => load(db(), hash));
      if (!grant || (grant.expiresAt && grant.expiresAt <= now)) return undefined;
      const revoked = await checkRevoked(deps.revocations, {
        tokenId: grant.keyId,
        issuedAt: grant.createdAt,
        subjects: [`app:${grant.appId}`],
      });
      if (revoked) return undefined;
      usage.set(grant.keyId, now);
      return grant;
    },

    /** Writes the buffered `last_used_at` values once a minute; call after a request. */
    async flushUsage(db: Database, force = false) {
      const now = deps.clock.now().getTime();
      if (usage.size === 0 || (!force && now - flushedAt < USAGE_FLUSH_MS)) return;
      flushedAt = now;
      const batch = [...usage];
      usage.clear();
      for (const [id, at] of batch) {
        await db.update(apiKeys).set({ last_used_at: at }).where(eq(apiKeys.id, id));
      }
    },

    forget(keyId: string) {
      cache.forget((grant) => grant?.keyId === keyId);
    },
  };
}

export type ApiKeyVerifier = ReturnType<typeof createApiKeyVerifier>;
