import type { Clock } from "../../ports/clock";
import {
  issuedBeforeRevocation,
  type RevocationStore,
  type TokenRevocationQuery,
} from "../../ports/revocations";
import type { RedisCommands } from "./commands";

/**
 * Revocations in Redis (Upstash over REST, or a plain Redis through ioredis), each key expiring
 * with what it revokes: `…:jti:<id>` for one token, `…:sub:<subject>` holding the revocation time
 * (ms) for all of a subject's earlier tokens.
 */
export function createRedisRevocationStore(
  redis: RedisCommands,
  clock: Clock,
  options: { prefix?: string } = {},
): RevocationStore {
  const prefix = options.prefix ?? "heimdall:revoked:";
  const tokenKey = (id: string) => `${prefix}jti:${id}`;
  const subjectKey = (subject: string) => `${prefix}sub:${subject}`;

  // Keeps the later of two revocation times, atomically, and extends the key's life.
  const keepLatest = `local current = tonumber(redis.call("GET", KEYS[1]) or "0")
local revokedAt = math.max(current, tonumber(ARGV[1]))
redis.call("SET", KEYS[1], revokedAt, "PX", ARGV[2])
return revokedAt`;

  /** Whether a subject's stored revocation time revokes a token issued at `issuedAt`. */
  const revokes = (stored: number | string | null | undefined, issuedAt: Date) =>
    stored != null && issuedBeforeRevocation(issuedAt.getTime(), Number(stored));

  // One MGET of every distinct key, whatever the number of tokens: sockets of one user share
  // their subjects.
  const revokedAmong = async (queries: readonly TokenRevocationQuery[]) => {
    if (queries.length === 0) return [];
    const keys = [
      ...new Set(queries.flatMap((q) => [tokenKey(q.tokenId), ...q.subjects.map(subjectKey)])),
    ];
    const values = await redis.mget<(number | string | null)[]>(...keys);
    const stored = new Map(keys.map((key, i) => [key, values[i] ?? null]));
    return queries.map(({ tokenId, issuedAt, subjects }) => {
      if (stored.get(tokenKey(tokenId)) !== null) return true;
      return subjects.some((subject) => revokes(stored.get(subjectKey(subject)), issuedAt));
    });
  };

  return {
    async revoke(tokenId, expiresAt) {
      const ttlMs = expiresAt.getTime() - clock.now().getTime();
      if (ttlMs <= 0) return;
      await redis.set(tokenKey(tokenId), 1, { px: ttlMs });
    },
    async spend(tokenId, expiresAt) {
      const ttlMs = Math.max(1, expiresAt.getTime() - clock.now().getTime());
      // SET NX answers OK to the one caller that created the key, null to everyone else.
      return (await redis.set(tokenKey(tokenId), 1, { nx: true, px: ttlMs })) === "OK";
    },
    async revokeIssuedBefore(subject, at, expiresAt) {
      const ttlMs = expiresAt.getTime() - clock.now().getTime();
      if (ttlMs <= 0) return;
      await redis.eval(keepLatest, [subjectKey(subject)], [at.getTime(), ttlMs]);
    },
    // The lookup of every authenticated request: its keys in order, with no de-duplication to build.
    async isRevoked({ tokenId, issuedAt, subjects }) {
      const stored = await redis.mget<(number | string | null)[]>(
        tokenKey(tokenId),
        ...subjects.map(subjectKey),
      );
      return stored[0] != null || subjects.some((_, i) => revokes(stored[i + 1], issuedAt));
    },
    revokedAmong,
    async ping() {
      await redis.ping();
    },
  };
}
