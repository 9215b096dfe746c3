import { eq, sql } from "drizzle-orm";
import { preparedPerDatabase } from "../db/prepared";
import { oauthClients, refreshTokens, sessions, users } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { type AppRecord, assertAppActive, settingsOf } from "./apps";
import { auditInsertPer, auditParameters } from "./audit";
import type { ServiceContext } from "./context";
import { endReplayedSession } from "./session-lifecycle";
import {
  findRefreshToRotate,
  grantOf,
  REFRESH_PREFIX,
  type RefreshToRotate,
  type TokenResponse,
  tokensFor,
} from "./session-tokens";
import { signInMessages } from "./sign-in.messages";
import { signInRefusalKnowing } from "./sign-in-rules";
import { bannedAt, grantsOfRoles, rolesOfUser } from "./users";

const invalidRefreshToken = () => new ApiError("invalid_grant", signInMessages.invalidRefreshToken);

/**
 * `grant_type=refresh_token`: rotates the refresh token. Presenting one already rotated is
 * reuse: the whole family (session) is revoked and audited, unless it comes within the app's
 * reuse interval, when it gets the same successor (parallel browser tabs).
 *
 * One statement rotates a token that may be rotated and answers what the tokens need; only when
 * it rotates nothing is the token read again, to tell which refusal or reuse applies.
 */
export async function refreshGrant(
  ctx: ServiceContext,
  app: AppRecord,
  input: { refreshToken: string; issuer: string },
): Promise<TokenResponse> {
  assertAppActive(app, "invalid_grant");
  if (!input.refreshToken.startsWith(REFRESH_PREFIX)) throw invalidRefreshToken();
  const now = ctx.clock.now();
  const successor = randomSecret(REFRESH_PREFIX);
  const rotated = await rotateIfAllowed(ctx, app, input.refreshToken, successor, now);
  if (rotated) {
    return tokensFor(
      ctx,
      app,
      rotated.user,
      { sessionId: rotated.session.id, refreshToken: successor, grant: grantOf(rotated.session) },
      input.issuer,
      rotated.grants,
    );
  }
  const found = await findRefreshToRotate(ctx.db, input.refreshToken, now);
  if (!found || refusesRefresh(app, found, now)) throw invalidRefreshToken();
  if (found.token.status === "rotated") return reuse(ctx, app, found, input.issuer);
  // Active and allowed now, yet not rotated a moment ago: what the statement read has changed
  // since (a ban lifted, a user reactivated). Only the statement grants a rotation.
  throw invalidRefreshToken();
}

/**
 * Whether a refresh of this token is refused, whatever its status: each condition here is one
 * of {@link rotation}'s, which must agree.
 */
export function refusesRefresh(
  app: Pick<AppRecord, "id">,
  found: RefreshToRotate,
  now: Date,
): boolean {
  const { token, session, user } = found;
  return (
    session.app_id !== app.id ||
    token.status === "revoked" ||
    token.expires_at <= now ||
    session.revoked_at !== null ||
    session.expires_at <= now ||
    // A session an OAuth client held ends with the client, even one its deletion did not reach.
    (session.client_id !== null && !found.clientExists) ||
    signInRefusalKnowing(user, found.banned) !== undefined
  );
}

/**
 * Replaces the presented refresh token with `successor`, audited, in one statement, if the token
 * is active and {@link refusesRefresh} would not refuse it: the session, its user and their
 * grants, or undefined when nothing was rotated (refused, already rotated, or a concurrent
 * refresh won: only one does).
 */
async function rotateIfAllowed(
  ctx: ServiceContext,
  app: AppRecord,
  presented: string,
  successor: string,
  now: Date,
) {
  const keepSuccessor = settingsOf(app).refresh_reuse_interval > 0;
  const [row] = await rotation(ctx.db).execute({
    hash: await sha256Hex(presented),
    appId: app.id,
    at: now.toISOString(),
    successorId: newId("rtk"),
    successorHash: await sha256Hex(successor),
    sealed: keepSuccessor ? await ctx.sealer.encrypt(successor) : null,
    // The actor and target are the token's user and session, which the statement finds.
    ...auditParameters(
      ctx.audit,
      {
        appId: app.id,
        action: "token.refreshed",
        actor: { type: "user", id: null },
        target: { type: "session", id: null },
      },
      now,
    ),
  });
  if (!row) return undefined;
  const { roles: held, ...rotated } = row;
  return { ...rotated, grants: grantsOfRoles(held) };
}

/**
 * The statement of {@link rotateIfAllowed}. The conditional UPDATE is the judge: the successor,
 * the session's touch and the audit row are written only from what it returned, and a concurrent
 * refresh of the same token waits on its row and then finds it no longer active. Its parameters
 * are cast: in an INSERT … SELECT the server cannot infer their types.
 */
const rotation = preparedPerDatabase((db) => {
  const p = (name: string) => sql.placeholder(name);
  const won = db.$with("won", { sessionId: sql<string>`session_id` }).as(sql`
    update ${refreshTokens}
    set status = 'rotated', rotated_at = ${p("at")}::timestamptz,
      replaced_by = ${p("successorId")}::text, successor_encrypted = ${p("sealed")}::text
    from ${sessions}
      inner join ${users} on ${users.id} = ${sessions.user_id}
      left join ${oauthClients} on ${oauthClients.id} = ${sessions.client_id}
    where ${refreshTokens.token_hash} = ${p("hash")}::text
      and ${refreshTokens.status} = 'active'
      and ${refreshTokens.expires_at} > ${p("at")}::timestamptz
      and ${sessions.id} = ${refreshTokens.session_id}
      and ${sessions.app_id} = ${p("appId")}::text
      and ${sessions.revoked_at} is null
      and ${sessions.expires_at} > ${p("at")}::timestamptz
      and (${sessions.client_id} is null or ${oauthClients.id} is not null)
      and ${users.status} = 'active'
      and not ${bannedAt(db, p("at"))}
    returning ${refreshTokens.session_id}, ${sessions.expires_at}, ${users.id} as user_id`);
  const successor = db.$with("successor", {}).as(sql`
    insert into ${refreshTokens} (id, session_id, token_hash, expires_at, created_at)
    select ${p("successorId")}::text, session_id, ${p("successorHash")}::text, expires_at,
      ${p("at")}::timestamptz
    from won`);
  const touched = db.$with("touched", {}).as(sql`
    update ${sessions} set last_used_at = ${p("at")}::timestamptz
    where id in (select session_id from won)`);
  // The session and user as they were read: the touch is not visible within the statement.
  return db
    .with(
      won,
      successor,
      touched,
      auditInsertPer(db, won, { actorId: sql`user_id`, targetId: sql`session_id` }),
    )
    .select({ session: sessions, user: users, roles: rolesOfUser(db) })
    .from(won)
    .innerJoin(sessions, sql`${sessions.id} = won.session_id`)
    .innerJoin(users, eq(users.id, sessions.user_id))
    .prepare("refresh_rotation");
});

/** A rotated refresh token presented again: its successor within the reuse interval, else the end. */
async function reuse(
  ctx: ServiceContext,
  app: AppRecord,
  found: RefreshToRotate,
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
      found.grants,
    );
  }
  await endReplayedSession(
    ctx,
    app.id,
    session.id,
    {
      reason: "refresh_token_reuse",
      action: "token.reuse_detected",
      metadata: { user_id: user.id, rotated_at: token.rotated_at?.toISOString() },
    },
    now,
  );
  throw invalidRefreshToken();
}
