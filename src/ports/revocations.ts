/**
 * Revoked token ids (JWT `jti`), kept until the token would have expired anyway, so that
 * verifying a token needs no database read. Also the app's reachability check for its cache.
 */
export interface RevocationStore {
  revoke(id: string, expiresAt: Date): Promise<void>;
  isRevoked(id: string): Promise<boolean>;
  /** Resolves when the store answers; rejects when it cannot be reached. */
  ping(): Promise<void>;
}
