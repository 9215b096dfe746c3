import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { type SigningAlgorithm, signingAlgorithms } from "../db/schema/settings";
import { ApiError } from "../lib/errors";
import { ulid } from "../lib/ids";
import type { ServiceContext } from "./context";
import type { VerificationKey } from "./keys";
import { checkRevoked } from "./revocation-status";
import type { AccessClaims, TokenProfile } from "./token-claims";

export type { AccessClaims, TokenProfile };

export const ACCESS_TOKEN_TYPE = "at+jwt";

export const accessTokenProfile: TokenProfile = {
  type: ACCESS_TOKEN_TYPE,
  audience: (name) => name,
};

/**
 * Short-lived, single-use tickets for opening a live socket from a browser (which cannot set
 * headers on a WebSocket): the caller's grants, another `typ`, another audience.
 */
export const socketTicketProfile: TokenProfile = {
  type: "ws-ticket+jwt",
  audience: (name) => `${name}:ws`,
};

/**
 * The challenge of a password sign-in that needs its second factor (`grant_type=mfa_otp`):
 * names the user, grants nothing, 5 minutes, used once.
 */
export const mfaTokenProfile: TokenProfile = {
  type: "mfa+jwt",
  audience: (name) => `${name}:mfa`,
};

/** `PUBLIC_URL + /v1/apps/<name>`: the `iss` of the app's tokens and its discovery base. */
export function issuerFor(baseUrl: string, appName: string): string {
  return `${baseUrl.replace(/\/$/, "")}/v1/apps/${encodeURIComponent(appName)}`;
}

export async function signAccessToken(
  ctx: ServiceContext,
  input: {
    issuer: string;
    app: { id: string; name: string; alg: SigningAlgorithm };
    subject: string;
    roles: string[];
    permissions: string[];
    ttlSeconds: number;
    sessionId?: string;
    clientId?: string;
    scope?: string;
    profile?: TokenProfile;
  },
): Promise<{ token: string; claims: AccessClaims }> {
  const profile = input.profile ?? accessTokenProfile;
  const key = await ctx.keys.signingKey(ctx.db, input.app.id, input.app.alg);
  const iat = Math.floor(ctx.clock.now().getTime() / 1000);
  const claims: AccessClaims = {
    iss: input.issuer,
    sub: input.subject,
    aud: profile.audience(input.app.name),
    app: input.app.id,
    roles: input.roles,
    permissions: input.permissions,
    jti: ulid(),
    iat,
    exp: iat + input.ttlSeconds,
    ...(input.sessionId ? { sid: input.sessionId } : {}),
    ...(input.clientId ? { client_id: input.clientId } : {}),
    ...(input.scope ? { scope: input.scope } : {}),
  };
  const token = await new SignJWT(claims as unknown as JWTPayload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: profile.type })
    .sign(key.privateKey);
  return { token, claims };
}

/** Why a token was refused; `/v1/authorize` answers with these, protected routes with 401. */
export type TokenProblem =
  | "malformed_token"
  | "unknown_key"
  | "invalid_signature"
  | "token_expired"
  | "token_not_yet_valid"
  | "invalid_claims"
  | "token_revoked";

export class TokenRejected extends ApiError {
  constructor(readonly problem: TokenProblem) {
    super("unauthorized", messages[problem], {
      headers: { "WWW-Authenticate": `Bearer realm="heimdall", error="invalid_token"` },
    });
  }
}

const messages: Record<TokenProblem, string> = {
  malformed_token: "The token is not a well-formed JWT",
  unknown_key: "The token was not signed by a key Heimdall knows",
  invalid_signature: "The token's signature does not verify",
  token_expired: "The token has expired",
  token_not_yet_valid: "The token is not valid yet",
  invalid_claims: "The token's issuer, audience or claims are not valid",
  token_revoked: "The token has been revoked",
};

const CLOCK_TOLERANCE_SECONDS = 5;

/**
 * Verifies an access token offline: the key by `kid` (cached), signature, `typ`, `iss`, `aud`,
 * expiry, then one revocation lookup covering its id, user, app and session. No database read
 * once the key is cached; no signature check for a token this process has verified before.
 */
export async function verifyAccessToken(
  ctx: ServiceContext,
  token: string,
  issuerBase: string,
  profile: TokenProfile = accessTokenProfile,
): Promise<AccessClaims> {
  const known = ctx.verifiedTokens.get(token);
  let kid = known?.key.kid;
  if (!kid) {
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new TokenRejected("malformed_token");
    }
  }
  if (!kid) throw new TokenRejected("unknown_key");
  // The database is opened only when the key is not cached yet.
  const key = await ctx.keys.verificationKey(() => ctx.db, kid);
  if (!key) throw new TokenRejected("unknown_key");

  const claims =
    known && known.key === key && known.profile === profile && known.issuerBase === issuerBase
      ? stillValid(known.claims, ctx.clock.now(), () => ctx.verifiedTokens.forget(token))
      : await verifySignatureAndClaims(ctx, token, key, issuerBase, profile);
  const revoked = await checkRevoked(ctx.revocations, {
    tokenId: claims.jti,
    issuedAt: new Date(claims.iat * 1000),
    subjects: subjectsOf(claims),
  });
  if (revoked) throw new TokenRejected("token_revoked");
  return claims;
}

async function verifySignatureAndClaims(
  ctx: ServiceContext,
  token: string,
  key: VerificationKey,
  issuerBase: string,
  profile: TokenProfile,
): Promise<AccessClaims> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key.publicKey, {
      algorithms: [key.alg],
      typ: profile.type,
      issuer: issuerFor(issuerBase, key.appName),
      audience: profile.audience(key.appName),
      currentDate: ctx.clock.now(),
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["sub", "jti", "iat", "exp"],
    }));
  } catch (error) {
    throw new TokenRejected(problemOf(error));
  }
  const claims = payload as unknown as AccessClaims;
  if (
    claims.app !== key.appId ||
    !Array.isArray(claims.permissions) ||
    !Array.isArray(claims.roles) ||
    !signingAlgorithms.includes(key.alg)
  ) {
    throw new TokenRejected("invalid_claims");
  }
  // Shared by every later request presenting the token: nobody may change it.
  Object.freeze(claims.permissions);
  Object.freeze(claims.roles);
  ctx.verifiedTokens.remember(token, { key, profile, issuerBase, claims: Object.freeze(claims) });
  return claims;
}

/** jose's time checks (`nbf`, `exp`, same tolerance) for a token verified before. */
function stillValid(claims: Readonly<AccessClaims>, now: Date, forget: () => void): AccessClaims {
  const seconds = Math.floor(now.getTime() / 1000);
  const { nbf } = claims as { nbf?: number };
  if (nbf !== undefined && nbf > seconds + CLOCK_TOLERANCE_SECONDS) {
    throw new TokenRejected("token_not_yet_valid");
  }
  if (claims.exp <= seconds - CLOCK_TOLERANCE_SECONDS) {
    forget();
    throw new TokenRejected("token_expired");
  }
  return claims;
}

/** The revocation subjects a token belongs to. */
export function subjectsOf(claims: Pick<AccessClaims, "sub" | "app" | "sid">): string[] {
  return [`sub:${claims.sub}`, `app:${claims.app}`, ...(claims.sid ? [`ses:${claims.sid}`] : [])];
}

function problemOf(error: unknown): TokenProblem {
  if (error instanceof errors.JWTExpired) return "token_expired";
  if (error instanceof errors.JWTClaimValidationFailed) {
    return error.claim === "nbf" || error.claim === "iat"
      ? "token_not_yet_valid"
      : "invalid_claims";
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return "invalid_signature";
  if (error instanceof errors.JOSEAlgNotAllowed) return "invalid_signature";
  return "malformed_token";
}
