import { and, eq, isNull } from "drizzle-orm";
import { base64url, SignJWT } from "jose";
import { oauthCodes, users } from "../db/schema";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { type AppRecord, settingsOf } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { oauthMessages } from "./oauth.messages";
import { authenticateClient } from "./oauth-clients";
import { endReplayedSession } from "./session-lifecycle";
import { openSession, type TokenResponse, tokensFor } from "./session-tokens";
import { signInMessages } from "./sign-in.messages";
import { signInRefusal } from "./sign-in-rules";
import type { UserRecord } from "./users";

const PKCE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

const invalidCode = () => new ApiError("invalid_grant", oauthMessages.invalidCode);

/**
 * `grant_type=authorization_code`: the client (authenticated as its type requires) exchanges a
 * code once, with the redirect URI and the PKCE verifier it was issued for. A code presented a
 * second time ends the session the first exchange opened (RFC 6749 §4.1.2). With `openid` the
 * answer carries an ID token.
 */
export async function exchangeCode(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    code: string;
    redirectUri: string;
    codeVerifier: string;
    clientId: string;
    clientSecret?: string | undefined;
    issuer: string;
  },
): Promise<TokenResponse> {
  const now = ctx.clock.now();
  const client = await authenticateClient(ctx.db, app, input, now);
  const codeHash = await sha256Hex(input.code);
  const [claimed] = await ctx.db
    .update(oauthCodes)
    .set({ used_at: now })
    .where(and(eq(oauthCodes.code_hash, codeHash), isNull(oauthCodes.used_at)))
    .returning();
  if (!claimed) {
    const [replayed] = await ctx.db
      .select()
      .from(oauthCodes)
      .where(eq(oauthCodes.code_hash, codeHash));
    if (replayed?.session_id && replayed.client_id === client.id) {
      await endReplayedSession(
        ctx,
        app.id,
        replayed.session_id,
        { reason: "authorization_code_reuse", action: "oauth.code_reused" },
        now,
      );
    }
    throw invalidCode();
  }
  const verifierMatches =
    PKCE_VERIFIER.test(input.codeVerifier) &&
    base64url.encode(
      new Uint8Array(
        await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input.codeVerifier)),
      ),
    ) === claimed.code_challenge;
  if (
    claimed.app_id !== app.id ||
    claimed.client_id !== client.id ||
    claimed.expires_at <= now ||
    claimed.redirect_uri !== input.redirectUri ||
    !verifierMatches
  ) {
    throw invalidCode();
  }
  const [user] = await ctx.db.select().from(users).where(eq(users.id, claimed.user_id));
  if (!user || (await signInRefusal(ctx.db, user, now))) {
    throw new ApiError("invalid_grant", signInMessages.userMayNotSignIn);
  }
  const grant = { clientId: client.id, scopes: claimed.scopes };
  const session = await audited(
    ctx,
    async (tx, at) => {
      const opened = await openSession(tx, ctx, app, user.id, at, grant);
      await tx
        .update(oauthCodes)
        .set({ session_id: opened.sessionId })
        .where(eq(oauthCodes.code_hash, codeHash));
      return opened;
    },
    (opened) => ({
      appId: app.id,
      action: "auth.login.succeeded",
      actor: { type: "user", id: user.id },
      target: { type: "session", id: opened.sessionId },
      metadata: { grant_type: "authorization_code", client_id: client.id },
    }),
  );
  const tokens = await tokensFor(ctx, app, user, session, input.issuer);
  if (!claimed.scopes.includes("openid")) return tokens;
  const idToken = await signIdToken(ctx, app, user, {
    issuer: input.issuer,
    clientId: client.id,
    scopes: claimed.scopes,
    nonce: claimed.nonce,
    authTime: claimed.auth_time,
  });
  return { ...tokens, id_token: idToken };
}

/** An OpenID Connect ID token, signed with the app's key (verifiable through its JWKS). */
async function signIdToken(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  input: {
    issuer: string;
    clientId: string;
    scopes: string[];
    nonce: string | null;
    authTime: Date;
  },
) {
  const settings = settingsOf(app);
  const key = await ctx.keys.signingKey(ctx.db, app.id, settings.signing_algorithm);
  const iat = Math.floor(ctx.clock.now().getTime() / 1000);
  return new SignJWT({
    ...(input.nonce ? { nonce: input.nonce } : {}),
    auth_time: Math.floor(input.authTime.getTime() / 1000),
    ...userClaims(user, input.scopes),
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .setIssuer(input.issuer)
    .setSubject(user.id)
    .setAudience(input.clientId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + settings.access_token_ttl)
    .sign(key.privateKey);
}

/** The claims the `email` and `profile` scopes release. */
export function userClaims(
  user: Pick<UserRecord, "email" | "email_verified_at" | "display_name" | "updated_at">,
  scopes: readonly string[],
) {
  return {
    ...(scopes.includes("email")
      ? { email: user.email, email_verified: user.email_verified_at !== null }
      : {}),
    ...(scopes.includes("profile")
      ? {
          ...(user.display_name ? { name: user.display_name } : {}),
          updated_at: Math.floor(user.updated_at.getTime() / 1000),
        }
      : {}),
  };
}
