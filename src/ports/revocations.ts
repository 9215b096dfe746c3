/** What a revocation check needs to know about one access token. */
export interface TokenRevocationQuery {
  /** The token's `jti`. */
  tokenId: string;
  /** The token's `iat`. */
  issuedAt: Date;
  /** Everything the token belongs to: its user, app and session (`sub:…`, `app:…`, `ses:…`). */
  subjects: string[];
}

/**
 * Revoked tokens and subjects, kept only as long as a token they revoke could still be valid, so
 * verifying a token needs no database read. Also the app's reachability check for its cache.
 */
export interface RevocationStore {
  /** Revokes one token id until `expiresAt` (the token's own expiry). */
  revoke(tokenId: string, expiresAt: Date): Promise<void>;
  /**
   * Spends a single-use id: one atomic check-and-set that answers true to the first caller only
   * (every concurrent or later one gets false). The id then counts as revoked until `expiresAt`.
   */
  spend(tokenId: string, expiresAt: Date): Promise<boolean>;
  /**
   * Revokes every token of a subject issued at or before `at` (a deactivated user, an archived
   * app, a revoked session), remembered until `expiresAt`. Later tokens are not affected.
   */
  revokeIssuedBefore(subject: string, at: Date, expiresAt: Date): Promise<void>;
  /** One round trip, whatever the number of subjects. */
  isRevoked(query: TokenRevocationQuery): Promise<boolean>;
  /**
   * {@link isRevoked} for many tokens at once (the live room's sweep of its sockets): one round
   * trip however many there are; the answers are in the order of the queries.
   */
  revokedAmong(queries: readonly TokenRevocationQuery[]): Promise<boolean[]>;
  /** Resolves when the store answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
}

/** Whether a token issued at `issuedAt` falls under a subject revoked at `revokedAt` (both ms). */
export function issuedBeforeRevocation(issuedAt: number, revokedAt: number): boolean {
  // `iat` has whole seconds: a token from the second of the revocation counts as revoked.
  return Math.floor(issuedAt / 1000) * 1000 <= revokedAt;
}
