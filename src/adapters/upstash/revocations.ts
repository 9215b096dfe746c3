import type { Redis } from "@upstash/redis";
import type { Clock } from "../../ports/clock";
import { issuedBeforeRevocation, type RevocationStore } from "../../ports/revocations";

/**
 * Revocations in Upstash Redis, each key expiring with what it revokes: `…:jti:<id>` for one
 * token, `…:sub:<subject>` holding the revocation time (ms) for all of a subject's earlier tokens.
 */
export function createUpstashRevocationStore(
  redis: Redis,
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
    async isRevoked({ tokenId, issuedAt, subjects }) {
      const [token, ...revokedAt] = await redis.mget<(number | null)[]>(
        tokenKey(tokenId),
        ...subjects.map(subjectKey),
      );
      if (token !== null && token !== undefined) return true;
      return revokedAt.some(
        (at) =>
          at !== null && at !== undefined && issuedBeforeRevocation(issuedAt.getTime(), Number(at)),
      );
    },
    async ping() {
      await redis.ping();
    },
  };
}
