import { eq, sql } from "drizzle-orm";
import { preparedPerDatabase } from "../db/prepared";
import { oauthClients, refreshTokens, sessions, users } from "../db/schema";
import { PERMISSION_PATTERN } from "../db/schema/permission";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import { signAccessToken } from "./access-tokens";
import { type AppRecord, settingsOf } from "./apps";
import { type AuditEvent, auditInsertPer, auditParameters } from "./audit";
import type { ServiceContext } from "./context";
import { hasPermission } from "./permissions";
import {
  bannedAt,
  type Grants,
  grantsOf,
  grantsOfRoles,
  rolesOfUser,
  type UserRecord,
} from "./users";

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

export const REFRESH_PREFIX = "rt_";

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
  known?: Grants,
) {
  const settings = settingsOf(app);
  const grants = known ?? (await grantsOf(ctx.db, user.id));
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

/** When a session opened at `at` ends: the app's refresh token lifetime later. */
const sessionExpiry = (app: AppRecord, at: Date) =>
  new Date(at.getTime() + settingsOf(app).refresh_token_ttl * 1000);

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
  const expiresAt = sessionExpiry(app, at);
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

/**
 * A sign-in's writes in one statement (no transaction held open across round trips): the
 * user's `last_login_at`, a session as {@link openSession} opens it, and the sign-in's audit
 * event, `event` of the session's id. Each is written only from the user the UPDATE touched:
 * undefined, and nothing written, when the user no longer exists.
 */
export async function openSignInSession(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  at: Date,
  event: (sessionId: string) => AuditEvent,
) {
  const sessionId = newId("ses");
  const refreshToken = randomSecret(REFRESH_PREFIX);
  const location = ctx.audit.location?.();
  const [row] = await signInWrites(ctx.db).execute({
    userId,
    appId: app.id,
    at: at.toISOString(),
    sessionId,
    ipAddress: ctx.audit.ipAddress,
    userAgent: ctx.audit.userAgent,
    location: location == null ? null : JSON.stringify(location),
    expiresAt: sessionExpiry(app, at).toISOString(),
    refreshId: newId("rtk"),
    refreshHash: await sha256Hex(refreshToken),
    ...auditParameters(ctx.audit, event(sessionId), at),
  });
  return row?.signedIn === 1 ? { sessionId, refreshToken } : undefined;
}

/**
 * The statement of {@link openSignInSession}. Its parameters are cast: in an INSERT … SELECT the
 * server cannot infer their types.
 */
const signInWrites = preparedPerDatabase((db) => {
  const p = (name: string) => sql.placeholder(name);
  const touched = db.$with("touched", { id: sql<string>`id` }).as(sql`
    update ${users} set last_login_at = ${p("at")}::timestamptz
    where id = ${p("userId")}::text
    returning id`);
  const session = db.$with("session", {}).as(sql`
    insert into ${sessions} (id, app_id, user_id, ip_address, user_agent, location, created_at,
      last_used_at, expires_at)
    select ${p("sessionId")}::text, ${p("appId")}::text, id, ${p("ipAddress")}::text,
      ${p("userAgent")}::text, ${p("location")}::jsonb, ${p("at")}::timestamptz,
      ${p("at")}::timestamptz, ${p("expiresAt")}::timestamptz
    from touched`);
  const refresh = db.$with("refresh", {}).as(sql`
    insert into ${refreshTokens} (id, session_id, token_hash, expires_at, created_at)
    select ${p("refreshId")}::text, ${p("sessionId")}::text, ${p("refreshHash")}::text,
      ${p("expiresAt")}::timestamptz, ${p("at")}::timestamptz
    from touched`);
  return db
    .with(touched, session, refresh, auditInsertPer(db, touched))
    .select({ signedIn: sql<number>`count(*)::int` })
    .from(touched)
    .prepare("sign_in_writes");
});

/**
 * The token response for a session just opened (or a refresh token just rotated); `grants` when
 * the caller has already read the user's roles.
 */
export async function tokensFor(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  session: { sessionId: string; refreshToken: string; grant?: SessionGrant | undefined },
  issuer: string,
  grants?: Grants,
): Promise<TokenResponse> {
  const access = await accessTokenFor(ctx, app, user, session, issuer, grants);
  return {
    access_token: access.token,
    token_type: "Bearer",
    expires_in: access.expiresIn,
    refresh_token: session.refreshToken,
    ...(session.grant ? { scope: session.grant.scopes.join(" ") } : {}),
  };
}

/** The grant a stored session was opened with, if any. */
export const grantOf = (session: { client_id: string | null; scopes: string[] | null }) =>
  session.client_id ? { clientId: session.client_id, scopes: session.scopes ?? [] } : undefined;

/** A stored refresh token with its session and user, and whether the session's client exists. */
export async function findRefresh(db: Database, token: string) {
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

/**
 * A refresh token presented for rotation that its statement did not rotate, read with everything
 * the refusal or reuse is decided on in the same statement: its session, user and client, whether
 * the user is banned at `now`, and the user's grants for the access token.
 */
export async function findRefreshToRotate(db: Database, token: string, now: Date) {
  if (!token.startsWith(REFRESH_PREFIX)) return undefined;
  const [row] = await rotationLookup(db).execute({
    hash: await sha256Hex(token),
    now: now.toISOString(),
  });
  if (!row) return undefined;
  const { roles: held, ...found } = row;
  return { ...found, grants: grantsOfRoles(held) };
}

export type RefreshToRotate = NonNullable<Awaited<ReturnType<typeof findRefreshToRotate>>>;

/** The statement of {@link findRefreshToRotate}: building this join cost more than running it. */
const rotationLookup = preparedPerDatabase((db) => {
  return db
    .select({
      token: refreshTokens,
      session: sessions,
      user: users,
      clientExists: sql<boolean>`${oauthClients.id} is not null`,
      banned: bannedAt(db, sql.placeholder("now")),
      roles: rolesOfUser(db),
    })
    .from(refreshTokens)
    .innerJoin(sessions, eq(sessions.id, refreshTokens.session_id))
    .innerJoin(users, eq(users.id, sessions.user_id))
    .leftJoin(oauthClients, eq(oauthClients.id, sessions.client_id))
    .where(eq(refreshTokens.token_hash, sql.placeholder("hash")))
    .limit(1)
    .prepare("refresh_to_rotate");
});
