import type { Redis } from "@upstash/redis";
import type { Clock } from "../../ports/clock";
import type { RevocationStore } from "../../ports/revocations";

/** Revocations in Upstash Redis: one key per id, expiring with the token it revokes. */
export function createUpstashRevocationStore(
  redis: Redis,
  clock: Clock,
  options: { prefix?: string } = {},
): RevocationStore {
  const prefix = options.prefix ?? "heimdall:revoked:";
  return {
    async revoke(id, expiresAt) {
      const ttlMs = expiresAt.getTime() - clock.now().getTime();
      if (ttlMs <= 0) return;
      await redis.set(`${prefix}${id}`, 1, { px: ttlMs });
    },
    async isRevoked(id) {
      return (await redis.exists(`${prefix}${id}`)) === 1;
    },
    async ping() {
      await redis.ping();
    },
  };
}
