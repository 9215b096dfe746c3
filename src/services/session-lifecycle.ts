import { and, desc, eq, gt, isNull } from "drizzle-orm";
import { refreshTokens, sessions } from "../db/schema";
import { ApiError } from "../lib/errors";
import type { AccessClaims } from "./access-tokens";
import { type AppRecord, revocationHorizon } from "./apps";
import { recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { findRefresh } from "./session-tokens";
import { signInMessages } from "./sign-in.messages";

export type SessionRecord = typeof sessions.$inferSelect;

/** Ends a session: its refresh tokens die, and so do the access tokens issued from it. */
export async function endSession(
  ctx: ServiceContext,
  sessionId: string,
  reason: string,
  now: Date,
) {
  await ctx.db
    .update(sessions)
    .set({ revoked_at: now, revoked_reason: reason })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revoked_at)));
  await ctx.db
    .update(refreshTokens)
    .set({ status: "revoked", successor_encrypted: null })
    .where(eq(refreshTokens.session_id, sessionId));
  await ctx.revocations.revokeIssuedBefore(`ses:${sessionId}`, now, revocationHorizon(now));
}

/**
 * Ends the session of a single-use secret presented again (a rotated refresh token, a used
 * authorization code): whoever presents it may hold a stolen copy, so the whole family ends,
 * audited as `replay.action` of an anonymous actor.
 */
export async function endReplayedSession(
  ctx: ServiceContext,
  appId: string,
  sessionId: string,
  replay: { reason: string; action: string; metadata?: Record<string, unknown> },
  now: Date,
) {
  await endSession(ctx, sessionId, replay.reason, now);
  await recordAudit(
    ctx,
    {
      appId,
      action: replay.action,
      actor: { type: "anonymous", id: null },
      target: { type: "session", id: sessionId },
      ...(replay.metadata ? { metadata: replay.metadata } : {}),
    },
    now,
  );
}

/**
 * RFC 7009 revocation of a refresh token (its whole session) or an access token (its `jti`).
 * Unknown or foreign tokens are ignored: the answer is the same either way.
 */
export async function revokeRefreshToken(ctx: ServiceContext, app: AppRecord, token: string) {
  const found = await findRefresh(ctx.db, token);
  if (!found || found.session.app_id !== app.id || found.session.revoked_at) return false;
  const now = ctx.clock.now();
  await endSession(ctx, found.session.id, "revoked", now);
  await recordAudit(
    ctx,
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
export async function revokeAccessToken(ctx: ServiceContext, app: AppRecord, claims: AccessClaims) {
  if (claims.app !== app.id) return false;
  await ctx.revocations.revoke(claims.jti, new Date(claims.exp * 1000));
  await recordAudit(
    ctx,
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

/** A user's live sessions (not ended, not expired), most recently used first. */
export function listSessions(ctx: ServiceContext, userId: string) {
  return ctx.db
    .select()
    .from(sessions)
    .where(
      and(
        eq(sessions.user_id, userId),
        isNull(sessions.revoked_at),
        gt(sessions.expires_at, ctx.clock.now()),
      ),
    )
    .orderBy(desc(sessions.last_used_at));
}

/** Ends sessions of a user: one by id, or all but `keep`. Returns how many ended. */
export async function endUserSessions(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  which: { id: string } | { allBut: string | undefined },
) {
  const now = ctx.clock.now();
  const live = await listSessions(ctx, userId);
  const ending = live.filter((session) =>
    "id" in which ? session.id === which.id : session.id !== which.allBut,
  );
  if ("id" in which && ending.length === 0) {
    throw new ApiError("not_found", signInMessages.noSuchSession);
  }
  for (const session of ending) {
    await endSession(ctx, session.id, "signed_out", now);
    await recordAudit(
      ctx,
      { appId: app.id, action: "session.ended", target: { type: "session", id: session.id } },
      now,
    );
  }
  return ending.length;
}
