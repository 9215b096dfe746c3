import { eq, sql } from "drizzle-orm";
import { preparedPerDatabase } from "../db/prepared";
import { refreshTokens, sessions, users } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import {
  type AccessClaims,
  mfaTokenProfile,
  TokenRejected,
  verifyAccessToken,
} from "./access-tokens";
import { type AppRecord, assertAppActive, settingsOf } from "./apps";
import { auditInsertPer, auditParameters, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { checkSecondFactor, type SecondFactor } from "./mfa";
import { endSession } from "./session-lifecycle";
import {
  findRefresh,
  findRefreshToRotate,
  grantOf,
  openSignInSession,
  REFRESH_PREFIX,
  type StoredRefresh,
  type TokenResponse,
  tokensFor,
} from "./session-tokens";
import { signInMessages } from "./sign-in.messages";
import {
  emailVerificationRefusal,
  mfaChallenge,
  signInRefusal,
  signInRefusalKnowing,
} from "./sign-in-rules";
import { findUserToSignIn, type Grants, type UserRecord } from "./users";

const invalidCredentials = () => new ApiError("invalid_grant", signInMessages.invalidCredentials);
const invalidRefreshToken = () => new ApiError("invalid_grant", signInMessages.invalidRefreshToken);
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

/**
 * `grant_type=refresh_token`: rotates the refresh token. Presenting one already rotated is
 * reuse: the whole family (session) is revoked and audited, unless it comes within the app's
 * reuse interval, when it gets the same successor (parallel browser tabs).
 */
export async function refreshGrant(
  ctx: ServiceContext,
  app: AppRecord,
  input: { refreshToken: string; issuer: string },
): Promise<TokenResponse> {
  assertAppActive(app, "invalid_grant");
  const now = ctx.clock.now();
  const found = await findRefreshToRotate(ctx.db, input.refreshToken, now);
  if (!found || found.session.app_id !== app.id) throw invalidRefreshToken();
  const { token, session, user } = found;
  if (session.revoked_at || token.status === "revoked" || session.expires_at <= now) {
    throw invalidRefreshToken();
  }
  // A session an OAuth client held ends with the client, even one its deletion did not reach.
  if (session.client_id && !found.clientExists) throw invalidRefreshToken();
  if (signInRefusalKnowing(user, found.banned)) throw invalidRefreshToken();

  if (token.status === "rotated") return reuse(ctx, app, found, input.issuer);

  const successor = randomSecret(REFRESH_PREFIX);
  if (!(await rotate(ctx, app, found, successor, now))) {
    const again = await findRefresh(ctx.db, input.refreshToken);
    if (!again) throw invalidRefreshToken();
    return reuse(ctx, app, again, input.issuer);
  }
  return tokensFor(
    ctx,
    app,
    user,
    { sessionId: session.id, refreshToken: successor, grant: grantOf(session) },
    input.issuer,
    found.grants,
  );
}

/**
 * Replaces the refresh token with `successor`, audited, in one statement (no transaction held
 * open across round trips): the successor, the session's touch and the audit row are written
 * only from what the conditional UPDATE returned. False when a concurrent refresh won the
 * rotation (only one does).
 */
async function rotate(
  ctx: ServiceContext,
  app: AppRecord,
  { token, session, user }: StoredRefresh,
  successor: string,
  now: Date,
) {
  const keepSuccessor = settingsOf(app).refresh_reuse_interval > 0;
  const [row] = await rotation(ctx.db).execute({
    tokenId: token.id,
    at: now.toISOString(),
    successorId: newId("rtk"),
    successorHash: await sha256Hex(successor),
    sealed: keepSuccessor ? await ctx.sealer.encrypt(successor) : null,
    expiresAt: session.expires_at.toISOString(),
    ...auditParameters(
      ctx.audit,
      {
        appId: app.id,
        action: "token.refreshed",
        actor: { type: "user", id: user.id },
        target: { type: "session", id: session.id },
      },
      now,
    ),
  });
  return row?.won === 1;
}

/**
 * The statement of {@link rotate}. Its parameters are cast: in an INSERT … SELECT the server
 * cannot infer their types.
 */
const rotation = preparedPerDatabase((db) => {
  const p = (name: string) => sql.placeholder(name);
  const won = db.$with("won", { sessionId: sql<string>`session_id` }).as(sql`
    update ${refreshTokens}
    set status = 'rotated', rotated_at = ${p("at")}::timestamptz,
      replaced_by = ${p("successorId")}::text, successor_encrypted = ${p("sealed")}::text
    where id = ${p("tokenId")}::text and status = 'active'
    returning session_id`);
  const successor = db.$with("successor", {}).as(sql`
    insert into ${refreshTokens} (id, session_id, token_hash, expires_at, created_at)
    select ${p("successorId")}::text, session_id, ${p("successorHash")}::text,
      ${p("expiresAt")}::timestamptz, ${p("at")}::timestamptz
    from won`);
  const touched = db.$with("touched", {}).as(sql`
    update ${sessions} set last_used_at = ${p("at")}::timestamptz
    where id in (select session_id from won)`);
  return db
    .with(won, successor, touched, auditInsertPer(db, won))
    .select({ won: sql<number>`count(*)::int` })
    .from(won)
    .prepare("refresh_rotation");
});

/** A rotated refresh token presented again: its successor within the reuse interval, else the end. */
async function reuse(
  ctx: ServiceContext,
  app: AppRecord,
  found: StoredRefresh,
  issuer: string,
): Promise<TokenResponse> {
  const { token, session, user } = found;
  const now = ctx.clock.now();
  const interval = settingsOf(app).refresh_reuse_interval * 1000;
  const withinInterval =
    interval > 0 && token.rotated_at && now.getTime() - token.rotated_at.getTime() <= interval;
  if (withinInterval && token.successor_encrypted) {
    const successor = await ctx.sealer.decrypt(token.successor_encrypted);
    return tokensFor(
      ctx,
      app,
      user,
      { sessionId: session.id, refreshToken: successor, grant: grantOf(session) },
      issuer,
    );
  }
  await endSession(ctx, session.id, "refresh_token_reuse", now);
  await recordAudit(
    ctx,
    {
      appId: app.id,
      action: "token.reuse_detected",
      actor: { type: "anonymous", id: null },
      target: { type: "session", id: session.id },
      metadata: { user_id: user.id, rotated_at: token.rotated_at?.toISOString() },
    },
    now,
  );
  throw invalidRefreshToken();
}
