import { and, asc, eq, gt, isNull, lt, sql } from "drizzle-orm";
import { invites, roles, userRoles, users } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { type AppRecord, findAppById } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { assertMayGrant } from "./permissions";
import { openSession, tokensFor } from "./session-tokens";
import { checkPassword, findUserByEmail } from "./users";

export const INVITE_TOKEN_PREFIX = "inv_tok_";

export type InviteView = Omit<typeof invites.$inferSelect, "token_hash" | "role_id"> & {
  role: string | null;
};

const inviteColumns = { invite: invites, role: roles.name };

function view(row: { invite: typeof invites.$inferSelect; role: string | null }): InviteView {
  const { token_hash: _hash, role_id: _role, ...fields } = row.invite;
  return { ...fields, role: row.role };
}

/** Creates an invite; its token (and so its URL) is in the answer only. */
export async function createInvite(
  ctx: ServiceContext,
  app: AppRecord,
  input: { email: string; role?: string | undefined; expires_in_hours: number; max_uses: number },
) {
  let roleId: string | null = null;
  if (input.role) {
    const [role] = await ctx.db
      .select()
      .from(roles)
      .where(and(eq(roles.app_id, app.id), eq(roles.name, input.role)));
    if (!role) {
      throw new ApiError("validation_error", "Unknown role", {
        details: [{ field: "json.role", reason: `no role named ${input.role}` }],
      });
    }
    assertMayGrant(ctx.grantor, role.permissions, "json.role");
    roleId = role.id;
  }
  const token = randomSecret(INVITE_TOKEN_PREFIX);
  const tokenHash = await sha256Hex(token);
  const invite = await audited(
    ctx,
    async (tx, now) => {
      const [row] = await tx
        .insert(invites)
        .values({
          id: newId("inv"),
          app_id: app.id,
          email: input.email,
          role_id: roleId,
          token_hash: tokenHash,
          expires_at: new Date(now.getTime() + input.expires_in_hours * 3_600_000),
          max_uses: input.max_uses,
          created_by: ctx.audit.actorId,
          created_at: now,
        })
        .returning();
      if (!row) throw new Error("insert returned no row");
      return row;
    },
    (row) => ({
      appId: app.id,
      action: "invite.created",
      target: { type: "invite", id: row.id },
      metadata: { email: input.email, role: input.role ?? null, max_uses: input.max_uses },
    }),
  );
  return { ...view({ invite, role: input.role ?? null }), token };
}

/** Invites that can still be accepted. */
export async function listPendingInvites(
  ctx: ServiceContext,
  appId: string,
  page: { limit: number; offset: number },
) {
  const { db } = ctx;
  const now = ctx.clock.now();
  const where = and(
    eq(invites.app_id, appId),
    isNull(invites.revoked_at),
    gt(invites.expires_at, now),
    lt(invites.uses, invites.max_uses),
  );
  const [rows, total] = await Promise.all([
    db
      .select(inviteColumns)
      .from(invites)
      .leftJoin(roles, eq(roles.id, invites.role_id))
      .where(where)
      .orderBy(asc(invites.id))
      .limit(page.limit)
      .offset(page.offset),
    db.$count(invites, where),
  ]);
  return { data: rows.map(view), total };
}

export async function revokeInvite(ctx: ServiceContext, app: AppRecord, id: string) {
  const [row] = await ctx.db
    .select(inviteColumns)
    .from(invites)
    .leftJoin(roles, eq(roles.id, invites.role_id))
    .where(and(eq(invites.app_id, app.id), eq(invites.id, id)));
  if (!row) throw new ApiError("not_found", "No such invite in this app");
  if (row.invite.revoked_at) return view(row);
  return audited(
    ctx,
    async (tx, now) => {
      await tx.update(invites).set({ revoked_at: now }).where(eq(invites.id, id));
      return view({ invite: { ...row.invite, revoked_at: now }, role: row.role });
    },
    { appId: app.id, action: "invite.revoked", target: { type: "invite", id } },
  );
}

const unusable = () =>
  new ApiError("not_found", "No such invite, or it has expired, been revoked or been used up");

/**
 * Accepts an invite: creates the user with the invite's email and role and signs them in.
 * Claiming a use is one conditional UPDATE, so two simultaneous accepts of a single-use invite
 * create one user; a failure later in the transaction gives the use back.
 */
export async function acceptInvite(
  ctx: ServiceContext,
  token: string,
  input: { password: string; display_name?: string | undefined },
  issuer: (app: AppRecord) => string,
) {
  // Guessing invite tokens counts as failed attempts of the caller's IP.
  const attemptKeys = ctx.audit.ipAddress ? [`ip:${ctx.audit.ipAddress}`] : [];
  await ctx.bruteForce.assertNotLocked(attemptKeys);
  const refuse = async () => {
    await ctx.bruteForce.recordFailure(attemptKeys);
    return unusable();
  };
  if (!token.startsWith(INVITE_TOKEN_PREFIX)) throw await refuse();
  const tokenHash = await sha256Hex(token);
  const [pending] = await ctx.db.select().from(invites).where(eq(invites.token_hash, tokenHash));
  const usable = (invite: typeof pending) =>
    invite &&
    !invite.revoked_at &&
    invite.expires_at > ctx.clock.now() &&
    invite.uses < invite.max_uses;
  if (!pending || !usable(pending)) throw await refuse();
  const app = await findAppById(ctx, pending.app_id);
  if (app.status !== "active") throw unusable();
  await checkPassword(ctx, app, input.password);
  if (await findUserByEmail(ctx.db, app.id, pending.email)) {
    throw new ApiError("conflict", "A user with the invite's email exists in this app already");
  }
  const passwordHash = await ctx.passwords.hash(input.password);

  const { user, session } = await audited(
    ctx,
    async (tx, now) => {
      const [claimed] = await tx
        .update(invites)
        .set({ uses: sql`${invites.uses} + 1` })
        .where(
          and(
            eq(invites.id, pending.id),
            isNull(invites.revoked_at),
            gt(invites.expires_at, now),
            lt(invites.uses, invites.max_uses),
          ),
        )
        .returning();
      if (!claimed) throw unusable();
      const [created] = await tx
        .insert(users)
        .values({
          id: newId("usr"),
          app_id: app.id,
          email: claimed.email,
          display_name: input.display_name ?? null,
          password_hash: passwordHash,
          created_at: now,
          updated_at: now,
          last_login_at: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!created) {
        throw new ApiError("conflict", "A user with the invite's email exists in this app already");
      }
      if (claimed.role_id) {
        await tx
          .insert(userRoles)
          .values({ user_id: created.id, role_id: claimed.role_id, created_at: now });
      }
      return { user: created, session: await openSession(tx, ctx, app, created.id, now) };
    },
    (result) => ({
      appId: app.id,
      action: "invite.accepted",
      actor: { type: "user", id: result.user.id },
      target: { type: "invite", id: pending.id },
      metadata: { user_id: result.user.id },
    }),
  );
  return { app, user, tokens: await tokensFor(ctx, app, user, session, issuer(app)) };
}
