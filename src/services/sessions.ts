import { and, desc, eq, gt, isNull, sql } from "drizzle-orm";
import { oauthClients, refreshTokens, sessions, users } from "../db/schema";
import { PERMISSION_PATTERN } from "../db/schema/permission";
import { type Cipher, randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database, RevocationStore } from "../ports";
import type { PasswordHasher } from "../ports/passwords";
import {
  type AccessClaims,
  mfaTokenProfile,
  signAccessToken,
  TokenRejected,
  verifyAccessToken,
} from "./access-tokens";
import { type AppRecord, revocationHorizon, settingsOf } from "./apps";
import { audited, recordAudit } from "./audit";
import { isUserBanned } from "./bans";
import type { BruteForceGuard } from "./brute-force";
import type { ServiceContext } from "./context";
import type { KeyRing } from "./keys";
import { checkSecondFactor, type SecondFactor } from "./mfa";
import { hasPermission } from "./permissions";
import { findUserByEmail, grantsOf, type UserRecord } from "./users";

export interface TokenDeps {
  keys: KeyRing;
  passwords: PasswordHasher;
  revocations: RevocationStore;
  sealer: Cipher;
  bruteForce: BruteForceGuard;
}

/** RFC 6749 §5.1 */
export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token: string;
  scope?: string;
  /** OpenID Connect, with `openid` in the scope. */
  id_token?: string;
}

const REFRESH_PREFIX = "rt_";
/** How long a password sign-in waits for its second factor. */
const MFA_TOKEN_TTL_SECONDS = 300;
const invalidCredentials = () => new ApiError("invalid_grant", "Invalid email or password");
const invalidRefresh = () =>
  new ApiError("invalid_grant", "The refresh token is invalid, expired or revoked");

function assertIssuing(app: AppRecord) {
  if (app.status !== "active") throw new ApiError("invalid_grant", "The app is archived");
}

/** What a session's tokens carry when it was granted to an OAuth client. */
export interface SessionGrant {
  clientId: string;
  scopes: string[];
}

/**
 * An access token for a session: the user's roles and permissions, or, for a session granted to
 * an OAuth client, only the permissions among its scopes that the user still holds.
 */
async function accessTokenFor(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  session: { sessionId: string; grant?: SessionGrant | undefined },
  issuer: string,
) {
  const settings = settingsOf(app);
  const grants = await grantsOf(ctx.db, user.id);
  const { grant } = session;
  const { token } = await signAccessToken(ctx, {
    issuer,
    app: { id: app.id, name: app.name, alg: settings.signing_algorithm },
    subject: user.id,
    roles: grant ? [] : grants.roles,
    permissions: grant
      ? grant.scopes.filter(
          (scope) => PERMISSION_PATTERN.test(scope) && hasPermission(grants.permissions, scope),
        )
      : grants.permissions,
    ttlSeconds: settings.access_token_ttl,
    sessionId: session.sessionId,
    ...(grant ? { clientId: grant.clientId, scope: grant.scopes.join(" ") } : {}),
  });
  return { token, expiresIn: settings.access_token_ttl };
}

/** `grant_type=password`: checks the credentials, opens a session, answers tokens. */
export async function passwordGrant(
  ctx: ServiceContext,
  deps: TokenDeps,
  app: AppRecord,
  input: { email: string; password: string; issuer: string },
): Promise<TokenResponse> {
  assertIssuing(app);
  const user = await authenticateWithPassword(ctx, deps, app, input);
  const now = ctx.clock.now();
  if (user.totp_enabled_at) {
    // The password was right; the second factor decides. The challenge names the user and app.
    const { token } = await signAccessToken(ctx, {
      issuer: input.issuer,
      app: { id: app.id, name: app.name, alg: settingsOf(app).signing_algorithm },
      subject: user.id,
      roles: [],
      permissions: [],
      ttlSeconds: MFA_TOKEN_TTL_SECONDS,
      profile: mfaTokenProfile,
    });
    await recordAudit(
      ctx.db,
      ctx.audit,
      {
        appId: app.id,
        action: "auth.login.mfa_required",
        actor: { type: "user", id: user.id },
        target: { type: "user", id: user.id },
      },
      now,
    );
    throw new ApiError(
      "mfa_required",
      "A second factor is required: send grant_type=mfa_otp with the mfa_token and otp (or recovery_code)",
      { mfaToken: token },
    );
  }
  return signIn(ctx, app, user, { issuer: input.issuer, grantType: "password" });
}

/**
 * Checks an email and password as every sign-in does: the brute-force lockout first, the same
 * work whether or not the account exists, failures audited and counted; a rehash when the
 * hashing cost was raised. Answers the active, unbanned user.
 */
export async function authenticateWithPassword(
  ctx: ServiceContext,
  deps: Pick<TokenDeps, "passwords" | "bruteForce">,
  app: AppRecord,
  input: { email: string; password: string },
): Promise<UserRecord> {
  const user = await findUserByEmail(ctx.db, app.id, input.email);
  // Keyed by the account the lookup resolved (its own email normalisation), so no spelling of
  // the address escapes the lock; only an address no account has is keyed by its text.
  const attemptKeys = [
    user ? `acct:${user.id}` : `acct:${app.id}:${input.email.toLowerCase()}`,
    ...(ctx.audit.ipAddress ? [`ip:${ctx.audit.ipAddress}`] : []),
  ];
  // A locked account or IP gets this answer before the password is even looked at.
  await deps.bruteForce.assertNotLocked(attemptKeys);
  // Same work whether or not the user exists, so timing does not reveal who has an account.
  const check = await deps.passwords.verify(
    user?.password_hash ?? deps.passwords.dummyHash,
    input.password,
  );
  const now = ctx.clock.now();
  const failure = !user
    ? "unknown_user"
    : !check.valid
      ? "wrong_password"
      : user.status !== "active"
        ? "user_deactivated"
        : (await isUserBanned(ctx.db, user.id, now))
          ? "user_banned"
          : undefined;
  if (failure || !user) {
    await recordAudit(
      ctx.db,
      ctx.audit,
      {
        appId: app.id,
        action: "auth.login.failed",
        actor: { type: "anonymous", id: user?.id ?? null },
        target: user ? { type: "user", id: user.id } : undefined,
        metadata: { reason: failure, email: input.email.slice(0, 254) },
      },
      now,
    );
    const locked = await deps.bruteForce.recordFailure(attemptKeys);
    if (locked.length > 0) {
      await recordAudit(
        ctx.db,
        ctx.audit,
        {
          appId: app.id,
          action: "auth.lockout",
          actor: { type: "anonymous", id: null },
          ...(user ? { target: { type: "user", id: user.id } } : {}),
          metadata: { locked, email: input.email.slice(0, 254) },
        },
        now,
      );
    }
    throw invalidCredentials();
  }

  if (check.needsRehash) {
    const rehash = await deps.passwords.hash(input.password);
    await ctx.db.update(users).set({ password_hash: rehash }).where(eq(users.id, user.id));
  }
  return user;
}

/** Whether a user may get tokens now: active, and not banned. */
export async function maySignIn(db: Database, user: Pick<UserRecord, "id" | "status">, now: Date) {
  return user.status === "active" && !(await isUserBanned(db, user.id, now));
}

/** The sign-in itself, once every factor has passed: a session, audited, and its tokens. */
async function signIn(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  input: { issuer: string; grantType: string },
) {
  const opened = await audited(
    ctx,
    async (tx, at) => {
      await tx.update(users).set({ last_login_at: at }).where(eq(users.id, user.id));
      return openSession(tx, ctx, app, user.id, at);
    },
    (session) => ({
      appId: app.id,
      action: "auth.login.succeeded",
      actor: { type: "user", id: user.id },
      target: { type: "session", id: session.sessionId },
      metadata: { grant_type: input.grantType },
    }),
  );
  return tokensFor(ctx, app, user, opened, input.issuer);
}

/**
 * `grant_type=mfa_otp`: completes a password sign-in with the `mfa_token` it answered and a TOTP
 * code or a recovery code. The challenge is used once; wrong codes count towards the brute-force
 * lockout of the user and the IP.
 */
export async function mfaGrant(
  ctx: ServiceContext,
  deps: TokenDeps,
  app: AppRecord,
  input: { mfaToken: string; factor: SecondFactor; issuerBase: string; issuer: string },
): Promise<TokenResponse> {
  assertIssuing(app);
  let claims: AccessClaims;
  try {
    claims = await verifyAccessToken(ctx, input.mfaToken, input.issuerBase, mfaTokenProfile);
  } catch (error) {
    if (error instanceof TokenRejected) {
      throw new ApiError("invalid_grant", "The mfa_token is invalid, expired or used");
    }
    throw error;
  }
  if (claims.app !== app.id) {
    throw new ApiError("invalid_grant", "The mfa_token is invalid, expired or used");
  }
  const [user] = await ctx.db.select().from(users).where(eq(users.id, claims.sub));
  const now = ctx.clock.now();
  if (!user || !(await maySignIn(ctx.db, user, now))) {
    throw new ApiError("invalid_grant", "The user cannot sign in");
  }
  if (!(await checkSecondFactor(ctx, deps, app, user, input.factor, "token_endpoint"))) {
    throw new ApiError("invalid_grant", "The code is not valid or was used already");
  }
  // Spent only once a code passed, so a mistyped code can be retried on the same challenge.
  if (!(await deps.revocations.spend(claims.jti, new Date(claims.exp * 1000)))) {
    throw new ApiError("invalid_grant", "The mfa_token is invalid, expired or used");
  }
  return signIn(ctx, app, user, {
    issuer: input.issuer,
    grantType: input.factor.recovery_code ? "mfa_recovery_code" : "mfa_otp",
  });
}

/**
 * Starts a session (a refresh token family) for a user, inside the caller's transaction; `grant`
 * when an OAuth client gets it.
 */
export async function openSession(
  tx: Database,
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  at: Date,
  grant?: SessionGrant,
) {
  const expiresAt = new Date(at.getTime() + settingsOf(app).refresh_token_ttl * 1000);
  const sessionId = newId("ses");
  const refreshToken = randomSecret(REFRESH_PREFIX);
  await tx.insert(sessions).values({
    id: sessionId,
    app_id: app.id,
    user_id: userId,
    ip_address: ctx.audit.ipAddress,
    user_agent: ctx.audit.userAgent,
    location: ctx.audit.location?.() ?? null,
    client_id: grant?.clientId ?? null,
    scopes: grant?.scopes ?? null,
    created_at: at,
    last_used_at: at,
    expires_at: expiresAt,
  });
  await tx.insert(refreshTokens).values({
    id: newId("rtk"),
    session_id: sessionId,
    token_hash: await sha256Hex(refreshToken),
    expires_at: expiresAt,
    created_at: at,
  });
  return { sessionId, refreshToken, grant };
}

/** The token response for a session just opened. */
export async function tokensFor(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  session: { sessionId: string; refreshToken: string; grant?: SessionGrant | undefined },
  issuer: string,
): Promise<TokenResponse> {
  const access = await accessTokenFor(ctx, app, user, session, issuer);
  return {
    access_token: access.token,
    token_type: "Bearer",
    expires_in: access.expiresIn,
    refresh_token: session.refreshToken,
    ...(session.grant ? { scope: session.grant.scopes.join(" ") } : {}),
  };
}

/** The grant a stored session was opened with, if any. */
const grantOf = (session: { client_id: string | null; scopes: string[] | null }) =>
  session.client_id ? { clientId: session.client_id, scopes: session.scopes ?? [] } : undefined;

async function findRefresh(db: Database, token: string) {
  if (!token.startsWith(REFRESH_PREFIX)) return undefined;
  const [row] = await db
    .select({
      token: refreshTokens,
      session: sessions,
      user: users,
      clientExists: sql<boolean>`${oauthClients.id} is not null`,
    })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.session_id))
    .innerJoin(users, eq(users.id, sessions.user_id))
    .leftJoin(oauthClients, eq(oauthClients.id, sessions.client_id))
    .where(eq(refreshTokens.token_hash, await sha256Hex(token)))
    .limit(1);
  return row;
}

/** Ends a session: its refresh tokens die, and so do the access tokens issued from it. */
export async function endSession(
  db: Database,
  revocations: RevocationStore,
  sessionId: string,
  reason: string,
  now: Date,
) {
  await db
    .update(sessions)
    .set({ revoked_at: now, revoked_reason: reason })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revoked_at)));
  await db
    .update(refreshTokens)
    .set({ status: "revoked", successor_encrypted: null })
    .where(eq(refreshTokens.session_id, sessionId));
  await revocations.revokeIssuedBefore(`ses:${sessionId}`, now, revocationHorizon(now));
}

/**
 * `grant_type=refresh_token`: rotates the refresh token. Presenting one already rotated is
 * reuse: the whole family (session) is revoked and audited, unless it comes within the app's
 * reuse interval, when it gets the same successor (parallel browser tabs).
 */
export async function refreshGrant(
  ctx: ServiceContext,
  deps: TokenDeps,
  app: AppRecord,
  input: { refreshToken: string; issuer: string },
): Promise<TokenResponse> {
  assertIssuing(app);
  const found = await findRefresh(ctx.db, input.refreshToken);
  const now = ctx.clock.now();
  if (!found || found.session.app_id !== app.id) throw invalidRefresh();
  const { token, session, user } = found;
  if (session.revoked_at || token.status === "revoked" || session.expires_at <= now) {
    throw invalidRefresh();
  }
  // A session an OAuth client held ends with the client, even one its deletion did not reach.
  if (session.client_id && !found.clientExists) throw invalidRefresh();
  if (!(await maySignIn(ctx.db, user, now))) throw invalidRefresh();

  if (token.status === "rotated") return reuse(ctx, deps, app, found, input.issuer);

  const settings = settingsOf(app);
  const successor = randomSecret(REFRESH_PREFIX);
  const successorId = newId("rtk");
  const keepSuccessor = settings.refresh_reuse_interval > 0;
  const rotated = await ctx.db.transaction(async (tx) => {
    // Only one concurrent refresh wins the rotation; the loser is treated as reuse below.
    const [won] = await tx
      .update(refreshTokens)
      .set({
        status: "rotated",
        rotated_at: now,
        replaced_by: successorId,
        successor_encrypted: keepSuccessor ? await deps.sealer.encrypt(successor) : null,
      })
      .where(and(eq(refreshTokens.id, token.id), eq(refreshTokens.status, "active")))
      .returning({ id: refreshTokens.id });
    if (!won) return false;
    await tx.insert(refreshTokens).values({
      id: successorId,
      session_id: session.id,
      token_hash: await sha256Hex(successor),
      expires_at: session.expires_at,
      created_at: now,
    });
    await tx.update(sessions).set({ last_used_at: now }).where(eq(sessions.id, session.id));
    await recordAudit(
      tx,
      ctx.audit,
      {
        appId: app.id,
        action: "token.refreshed",
        actor: { type: "user", id: user.id },
        target: { type: "session", id: session.id },
      },
      now,
    );
    return true;
  });
  if (!rotated) {
    const again = await findRefresh(ctx.db, input.refreshToken);
    if (!again) throw invalidRefresh();
    return reuse(ctx, deps, app, again, input.issuer);
  }
  return tokensFor(
    ctx,
    app,
    user,
    { sessionId: session.id, refreshToken: successor, grant: grantOf(session) },
    input.issuer,
  );
}

async function reuse(
  ctx: ServiceContext,
  deps: TokenDeps,
  app: AppRecord,
  found: NonNullable<Awaited<ReturnType<typeof findRefresh>>>,
  issuer: string,
): Promise<TokenResponse> {
  const { token, session, user } = found;
  const now = ctx.clock.now();
  const interval = settingsOf(app).refresh_reuse_interval * 1000;
  const withinInterval =
    interval > 0 && token.rotated_at && now.getTime() - token.rotated_at.getTime() <= interval;
  if (withinInterval && token.successor_encrypted) {
    const successor = await deps.sealer.decrypt(token.successor_encrypted);
    return tokensFor(
      ctx,
      app,
      user,
      { sessionId: session.id, refreshToken: successor, grant: grantOf(session) },
      issuer,
    );
  }
  await endSession(ctx.db, deps.revocations, session.id, "refresh_token_reuse", now);
  await recordAudit(
    ctx.db,
    ctx.audit,
    {
      appId: app.id,
      action: "token.reuse_detected",
      actor: { type: "anonymous", id: null },
      target: { type: "session", id: session.id },
      metadata: { user_id: user.id, rotated_at: token.rotated_at?.toISOString() },
    },
    now,
  );
  throw invalidRefresh();
}

/**
 * RFC 7009 revocation of a refresh token (its whole session) or an access token (its `jti`).
 * Unknown or foreign tokens are ignored: the answer is the same either way.
 */
export async function revokeRefreshToken(
  ctx: ServiceContext,
  deps: Pick<TokenDeps, "revocations">,
  app: AppRecord,
  token: string,
) {
  const found = await findRefresh(ctx.db, token);
  if (!found || found.session.app_id !== app.id || found.session.revoked_at) return false;
  const now = ctx.clock.now();
  await endSession(ctx.db, deps.revocations, found.session.id, "revoked", now);
  await recordAudit(
    ctx.db,
    ctx.audit,
    {
      appId: app.id,
      action: "token.revoked",
      target: { type: "session", id: found.session.id },
      metadata: { token_type: "refresh_token" },
    },
    now,
  );
  return true;
}

/** RFC 7009 for an access token: its `jti` is revoked until the token would have expired. */
export async function revokeAccessToken(
  ctx: ServiceContext,
  deps: Pick<TokenDeps, "revocations">,
  app: AppRecord,
  claims: AccessClaims,
) {
  if (claims.app !== app.id) return false;
  await deps.revocations.revoke(claims.jti, new Date(claims.exp * 1000));
  await recordAudit(
    ctx.db,
    ctx.audit,
    {
      appId: app.id,
      action: "token.revoked",
      target: { type: "user", id: claims.sub },
      metadata: { token_type: "access_token", jti: claims.jti },
    },
    ctx.clock.now(),
  );
  return true;
}

export type SessionRecord = typeof sessions.$inferSelect;

/** A user's live sessions (not ended, not expired), most recently used first. */
export function listSessions(db: Database, userId: string, now: Date) {
  return db
    .select()
    .from(sessions)
    .where(
      and(eq(sessions.user_id, userId), isNull(sessions.revoked_at), gt(sessions.expires_at, now)),
    )
    .orderBy(desc(sessions.last_used_at));
}

/** Ends sessions of a user: one by id, or all but `keep`. Returns how many ended. */
export async function endUserSessions(
  ctx: ServiceContext,
  deps: Pick<TokenDeps, "revocations">,
  app: AppRecord,
  userId: string,
  which: { id: string } | { allBut: string | undefined },
) {
  const now = ctx.clock.now();
  const live = await listSessions(ctx.db, userId, now);
  const ending = live.filter((session) =>
    "id" in which ? session.id === which.id : session.id !== which.allBut,
  );
  if ("id" in which && ending.length === 0) {
    throw new ApiError("not_found", "No such session of yours");
  }
  for (const session of ending) {
    await endSession(ctx.db, deps.revocations, session.id, "signed_out", now);
    await recordAudit(
      ctx.db,
      ctx.audit,
      { appId: app.id, action: "session.ended", target: { type: "session", id: session.id } },
      now,
    );
  }
  return ending.length;
}
