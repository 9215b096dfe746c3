import { ApiError } from "../lib/errors";
import type { RevocationStore, TokenRevocationQuery } from "../ports";

/**
 * Revocation checks fail closed: when the store cannot answer, no token is accepted (503), since
 * accepting would let revoked tokens through.
 */
export async function checkRevoked(revocations: RevocationStore, query: TokenRevocationQuery) {
  try {
    return await revocations.isRevoked(query);
  } catch (error) {
    throw new ApiError("service_unavailable", "Token revocation status is unavailable; try again", {
      headers: { "Retry-After": "5" },
      cause: error,
    });
  }
}
