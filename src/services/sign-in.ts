import { eq } from "drizzle-orm";
import { users } from "../db/schema";
import { ApiError } from "../lib/errors";
import {
  type AccessClaims,
  mfaTokenProfile,
  TokenRejected,
  verifyAccessToken,
} from "./access-tokens";
import { type AppRecord, assertAppActive } from "./apps";
import { recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { checkSecondFactor, type SecondFactor } from "./mfa";
import { openSignInSession, type TokenResponse, tokensFor } from "./session-tokens";
import { signInMessages } from "./sign-in.messages";
import {
  emailVerificationRefusal,
  mfaChallenge,
  signInRefusal,
  signInRefusalKnowing,
} from "./sign-in-rules";
import { findUserToSignIn, type Grants, type UserRecord } from "./users";

const invalidCredentials = () => new ApiError("invalid_grant", signInMessages.invalidCredentials);
const invalidMfaToken = () => new ApiError("invalid_grant", signInMessages.invalidMfaToken);

/** `grant_type=password`: checks the credentials, opens a session, answers tokens. */
export async function passwordGrant(
  ctx: ServiceContext,
  app: AppRecord,
  input: { email: string; password: string; issuer: string },
): Promise<TokenResponse> {
  assertAppActive(app, "invalid_grant");
  const { user, grants } = await authenticateWithGrants(ctx, app, input);
  const unverified = emailVerificationRefusal(app, user);
  if (unverified) throw unverified;
  return signInOrChallenge(ctx, app, user, { issuer: input.issuer, grantType: "password" }, grants);
}

/**
 * After a first factor passed (a password, a mailed code): the tokens, or, when the user turned
 * on 2FA, the `mfa_required` challenge the second factor completes.
 */
export async function signInOrChallenge(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  input: { issuer: string; grantType: string },
  grants?: Grants,
): Promise<TokenResponse> {
  if (user.totp_enabled_at) {
    // The first factor was right; the second decides. The challenge names the user and app.
    const now = ctx.clock.now();
    const challenge = await mfaChallenge(ctx, app, user, input.issuer);
    await recordAudit(
      ctx,
      {
        appId: app.id,
        action: "auth.login.mfa_required",
        actor: { type: "user", id: user.id },
        target: { type: "user", id: user.id },
        metadata: { grant_type: input.grantType },
      },
      now,
    );
    throw challenge;
  }
  return signIn(ctx, app, user, input, grants);
}

/**
 * Checks an email and password as every sign-in does: the brute-force lockout first, the same
 * work whether or not the account exists, failures audited and counted; a rehash when the
 * hashing cost was raised. Answers the active, unbanned user.
 */
export async function authenticateWithPassword(
  ctx: ServiceContext,
  app: AppRecord,
  input: { email: string; password: string },
): Promise<UserRecord> {
  return (await authenticateWithGrants(ctx, app, input)).user;
}

/** {@link authenticateWithPassword}, with the user's grants read in the same lookup. */
async function authenticateWithGrants(
  ctx: ServiceContext,
  app: AppRecord,
  input: { email: string; password: string },
): Promise<{ user: UserRecord; grants: Grants }> {
  const found = await findUserToSignIn(ctx.db, app.id, input.email, ctx.clock.now());
  const user = found?.user;
  // Keyed by the account the lookup resolved (its own email normalisation), so no spelling of
  // the address escapes the lock; only an address no account has is keyed by its text.
  const attemptKeys = [
    user ? `acct:${user.id}` : `acct:${app.id}:${input.email.toLowerCase()}`,
    ...(ctx.audit.ipAddress ? [`ip:${ctx.audit.ipAddress}`] : []),
  ];
  // A locked account or IP gets this answer before the password is even looked at.
  await ctx.bruteForce.assertNotLocked(attemptKeys);
  // Same work whether or not the user exists, so timing does not reveal who has an account.
  const check = await ctx.passwords.verify(
    user?.password_hash ?? ctx.passwords.dummyHash,
    input.password,
  );
  const now = ctx.clock.now();
  const failure = !found
    ? "unknown_user"
    : !check.valid
      ? "wrong_password"
      : signInRefusalKnowing(found.user, found.banned);
  if (failure || !found) {
    await auditPasswordFailure(ctx, app, user, input.email, failure, attemptKeys, now);
    throw invalidCredentials();
  }

  if (check.needsRehash) {
    const rehash = await ctx.passwords.hash(input.password);
    await ctx.db.update(users).set({ password_hash: rehash }).where(eq(users.id, found.user.id));
  }
  return found;
}

/** A refused password: audited, counted towards the lockouts, and the lockout it sets audited. */
async function auditPasswordFailure(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord | undefined,
  email: string,
  reason: string | undefined,
  attemptKeys: string[],
  now: Date,
) {
  await recordAudit(
    ctx,
    {
      appId: app.id,
      action: "auth.login.failed",
      actor: { type: "anonymous", id: user?.id ?? null },
      target: user ? { type: "user", id: user.id } : undefined,
      metadata: { reason, email: email.slice(0, 254) },
    },
    now,
  );
  const locked = await ctx.bruteForce.recordFailure(attemptKeys);
  if (locked.length > 0) {
    await recordAudit(
      ctx,
      {
        appId: app.id,
        action: "auth.lockout",
        actor: { type: "anonymous", id: null },
        ...(user ? { target: { type: "user", id: user.id } } : {}),
        metadata: { locked, email: email.slice(0, 254) },
      },
      now,
    );
  }
}

/**
 * The sign-in itself, once every factor has passed: a session, audited, and its tokens; `grants`
 * when the caller has already read the user's roles.
 */
async function signIn(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  input: { issuer: string; grantType: string },
  grants?: Grants,
) {
  const opened = await openSignInSession(ctx, app, user.id, ctx.clock.now(), (sessionId) => ({
    appId: app.id,
    action: "auth.login.succeeded",
    actor: { type: "user", id: user.id },
    target: { type: "session", id: sessionId },
    metadata: { grant_type: input.grantType },
  }));
  if (!opened) throw invalidCredentials();
  return tokensFor(ctx, app, user, opened, input.issuer, grants);
}

/**
 * `grant_type=mfa_otp`: completes a password sign-in with the `mfa_token` it answered and a TOTP
 * code or a recovery code. The challenge is used once; wrong codes count towards the brute-force
 * lockout of the user and the IP.
 */
export async function mfaGrant(
  ctx: ServiceContext,
  app: AppRecord,
  input: { mfaToken: string; factor: SecondFactor; issuerBase: string; issuer: string },
): Promise<TokenResponse> {
  assertAppActive(app, "invalid_grant");
  let claims: AccessClaims;
  try {
    claims = await verifyAccessToken(ctx, input.mfaToken, input.issuerBase, mfaTokenProfile);
  } catch (error) {
    if (error instanceof TokenRejected) throw invalidMfaToken();
    throw error;
  }
  if (claims.app !== app.id) throw invalidMfaToken();
  const [user] = await ctx.db.select().from(users).where(eq(users.id, claims.sub));
  const now = ctx.clock.now();
  if (!user || (await signInRefusal(ctx.db, user, now))) {
    throw new ApiError("invalid_grant", signInMessages.userMayNotSignIn);
  }
  const unverified = emailVerificationRefusal(app, user);
  if (unverified) throw unverified;
  if (!(await checkSecondFactor(ctx, app, user, input.factor, "token_endpoint"))) {
    throw new ApiError("invalid_grant", signInMessages.invalidSecondFactor);
  }
  // Spent only once a code passed, so a mistyped code can be retried on the same challenge.
  if (!(await ctx.revocations.spend(claims.jti, new Date(claims.exp * 1000)))) {
    throw invalidMfaToken();
  }
  return signIn(ctx, app, user, {
    issuer: input.issuer,
    grantType: input.factor.recovery_code ? "mfa_recovery_code" : "mfa_otp",
  });
}
