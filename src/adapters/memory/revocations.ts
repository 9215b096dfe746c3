import type { Clock } from "../../ports/clock";
import {
  issuedBeforeRevocation,
  type RevocationStore,
  type TokenRevocationQuery,
} from "../../ports/revocations";

/** In-process revocation list for the embedded default; entries drop out once expired. */
export function createMemoryRevocationStore(clock: Clock): RevocationStore {
  const tokens = new Map<string, number>();
  const subjects = new Map<string, { revokedAt: number; expiresAt: number }>();
  let sweepAtSize = 1024;

  // Sweep whenever the maps have doubled since the last sweep: amortised O(1) per write.
  const sweepIfLarge = (now: number) => {
    if (tokens.size + subjects.size < sweepAtSize) return;
    for (const [id, expiresAt] of tokens) if (expiresAt <= now) tokens.delete(id);
    for (const [id, entry] of subjects) if (entry.expiresAt <= now) subjects.delete(id);
    sweepAtSize = Math.max(1024, (tokens.size + subjects.size) * 2);
  };

  const revoked = ({ tokenId, issuedAt, subjects: owners }: TokenRevocationQuery, now: number) => {
    const tokenExpiry = tokens.get(tokenId);
    if (tokenExpiry !== undefined && tokenExpiry > now) return true;
    return owners.some((owner) => {
      const entry = subjects.get(owner);
      return (
        entry !== undefined &&
        entry.expiresAt > now &&
        issuedBeforeRevocation(issuedAt.getTime(), entry.revokedAt)
      );
    });
  };

  return {
    async revoke(tokenId, expiresAt) {
      const now = clock.now().getTime();
      sweepIfLarge(now);
      if (expiresAt.getTime() > now) tokens.set(tokenId, expiresAt.getTime());
    },
    async spend(tokenId, expiresAt) {
      // No await before the set: two callers in this process cannot both see it unset.
      const now = clock.now().getTime();
      const current = tokens.get(tokenId);
      if (current !== undefined && current > now) return false;
      sweepIfLarge(now);
      tokens.set(tokenId, Math.max(expiresAt.getTime(), now + 1));
      return true;
    },
    async revokeIssuedBefore(subject, at, expiresAt) {
      const now = clock.now().getTime();
      sweepIfLarge(now);
      if (expiresAt.getTime() <= now) return;
      const revokedAt = Math.max(at.getTime(), subjects.get(subject)?.revokedAt ?? 0);
      subjects.set(subject, { revokedAt, expiresAt: expiresAt.getTime() });
    },
    async isRevoked(query) {
      return revoked(query, clock.now().getTime());
    },
    async revokedAmong(queries) {
      const now = clock.now().getTime();
      return queries.map((query) => revoked(query, now));
    },
    async ping() {},
  };
}
