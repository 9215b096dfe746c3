import type { Config } from "../config";
import { ApiError } from "../lib/errors";
import type { Clock, Limiter, RevocationStore } from "../ports";
import { checkRevoked } from "./revocation-status";

/**
 * Brute-force protection: failed attempts are counted per account and per IP in a
 * window; past the maximum, that account or IP is locked for the lockout time. A lock is kept in
 * the revocation store as "everything until the lock ends is refused", so every isolate sees it
 * with the one lookup it makes anyway.
 */
export function createBruteForceGuard(deps: {
  config: Pick<Config, "BRUTEFORCE_MAX_ATTEMPTS" | "BRUTEFORCE_WINDOW" | "BRUTEFORCE_LOCKOUT">;
  limiter: Limiter;
  revocations: RevocationStore;
  clock: Clock;
}) {
  const { config, clock } = deps;
  const lockKey = (key: string) => `lock:${key}`;

  return {
    /** Throws 429 while any of the keys is locked; the answer does not depend on the password. */
    async assertNotLocked(keys: string[]) {
      const now = clock.now();
      const locked = await checkRevoked(deps.revocations, {
        tokenId: "-",
        issuedAt: now,
        subjects: keys.map(lockKey),
      });
      if (locked) {
        throw new ApiError("rate_limited", "Too many failed attempts; try again later", {
          headers: { "Retry-After": String(Math.ceil(config.BRUTEFORCE_LOCKOUT / 1000)) },
        });
      }
    },

    /** Counts a failure for each key; returns the keys this failure locked. */
    async recordFailure(keys: string[]): Promise<string[]> {
      const rule = { limit: config.BRUTEFORCE_MAX_ATTEMPTS, windowMs: config.BRUTEFORCE_WINDOW };
      const locked: string[] = [];
      for (const key of keys) {
        const result = await deps.limiter.limit(`bf:${key}`, rule);
        if (result.success) continue;
        const until = new Date(clock.now().getTime() + config.BRUTEFORCE_LOCKOUT);
        await deps.revocations.revokeIssuedBefore(lockKey(key), until, until);
        locked.push(key);
      }
      return locked;
    },
  };
}

export type BruteForceGuard = ReturnType<typeof createBruteForceGuard>;
