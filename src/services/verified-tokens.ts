import type { VerificationKey } from "./keys";
import type { AccessClaims, TokenProfile } from "./token-claims";

/** A token whose signature and claims verified, as {@link VerifiedTokens} keeps it. */
export interface VerifiedToken {
  key: VerificationKey;
  profile: TokenProfile;
  issuerBase: string;
  claims: Readonly<AccessClaims>;
}

const MAX_VERIFIED_TOKENS = 10_000;

/**
 * The tokens of this process whose signature and claims have verified, so a token presented
 * again (every request of a client carries the same one until it expires) is not verified again:
 * the RS256 verification is most of a light route's work. Only a token that verified is kept,
 * under the whole token string; a hit still needs the same key to be current for its `kid` (a
 * retired, unpublished key misses), the same profile and issuer, and the time checks against the
 * clock of the request; revocation is looked up on every use. Bounded, oldest first out.
 */
export type VerifiedTokens = ReturnType<typeof createVerifiedTokens>;

export function createVerifiedTokens(maxEntries = MAX_VERIFIED_TOKENS) {
  const tokens = new Map<string, VerifiedToken>();
  return {
    get: (token: string) => tokens.get(token),
    remember(token: string, verified: VerifiedToken) {
      if (tokens.size >= maxEntries) tokens.delete(tokens.keys().next().value as string);
      tokens.set(token, verified);
    },
    forget: (token: string) => tokens.delete(token),
  };
}
