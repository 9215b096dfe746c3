import type { Clock } from "../../ports/clock";
import type { RevocationStore } from "../../ports/revocations";

/** In-process revocation list for the embedded default; entries drop out once expired. */
export function createMemoryRevocationStore(clock: Clock): RevocationStore {
  const expiries = new Map<string, number>();
  let sweepAtSize = 1024;

  const dropExpired = (now: number) => {
    for (const [id, expiresAt] of expiries) {
      if (expiresAt <= now) expiries.delete(id);
    }
  };

  return {
    async revoke(id, expiresAt) {
      const now = clock.now().getTime();
      // Sweep whenever the map has doubled since the last sweep: amortised O(1) per revoke.
      if (expiries.size >= sweepAtSize) {
        dropExpired(now);
        sweepAtSize = Math.max(1024, expiries.size * 2);
      }
      if (expiresAt.getTime() > now) expiries.set(id, expiresAt.getTime());
    },
    async isRevoked(id) {
      const expiresAt = expiries.get(id);
      if (expiresAt === undefined) return false;
      if (expiresAt <= clock.now().getTime()) {
        expiries.delete(id);
        return false;
      }
      return true;
    },
    async ping() {},
  };
}
