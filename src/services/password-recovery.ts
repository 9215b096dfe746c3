import { and, eq } from "drizzle-orm";
import { users } from "../db/schema";
import { ApiError } from "../lib/errors";
import type { Database } from "../ports";
import { accountPageUrl } from "./account-links";
import { issueAccountToken, redeemAccountToken, verifiedAfter } from "./account-tokens";
import { type AppRecord, assertAppActive } from "./apps";
import { audited, recordAuditIn } from "./audit";
import type { ServiceContext } from "./context";
import { assertCurrentPassword } from "./current-password";
import { queueEmail } from "./email";
import { mailToAccount } from "./mailed-secrets";
import { passwordMessages } from "./password-recovery.messages";
import { endSession, listSessions } from "./session-lifecycle";
import { checkPassword, revokeUserTokens, type UserRecord } from "./users";

/**
 * `password/forgot`: mails a reset link to the account of `email`, if there is one; the answer
 * and the work are the same either way. Answers the outbox ids queued.
 */
export async function requestPasswordReset(
  ctx: ServiceContext,
  app: AppRecord,
  input: { email: string; base: string },
) {
  assertAppActive(app, "forbidden");
  return mailToAccount(
    ctx,
    app,
    input.email,
    (tx, user, now) =>
      mailResetLink(tx, app, user, { kind: "password_reset", base: input.base }, now),
    (user) => ({
      appId: app.id,
      action: "password.reset_requested",
      actor: { type: "anonymous", id: null },
      target: { type: "user", id: user.id },
    }),
  );
}

/**
 * Issues a reset link for `user` and queues it in `tx`: the reset mail itself, or the "account
 * exists" mail a sign-up with a taken address sends its owner. Answers the outbox id.
 */
export async function mailResetLink(
  tx: Database,
  app: AppRecord,
  user: Pick<UserRecord, "id" | "email">,
  mail: { kind: "password_reset" | "account_exists"; base: string },
  now: Date,
) {
  const { token, minutes } = await issueAccountToken(
    tx,
    app,
    { userId: user.id, purpose: "password_reset", email: user.email },
    now,
  );
  return queueEmail(
    tx,
    app,
    {
      kind: mail.kind,
      to: user.email,
      variables: {
        email: user.email,
        link: accountPageUrl(mail.base, app, "reset-password", token),
        minutes,
      },
    },
    now,
  );
}

/**
 * `password/reset`: spends the mailed link and sets the new password. Every session of the user
 * ends (whoever knew the old password is out), and the address counts as verified: the link
 * reached it. A reset does not sign in, so a second factor is still asked at the next sign-in.
 */
export async function resetPassword(
  ctx: ServiceContext,
  app: AppRecord,
  input: { token: string; password: string },
  field = "json.password",
) {
  assertAppActive(app, "forbidden");
  await checkPassword(ctx, app, input.password, field);
  // Hashed before the transaction: the token's row stays locked only for the writes.
  const passwordHash = await ctx.passwords.hash(input.password);
  const redeemed = await redeemAccountToken(
    ctx,
    app,
    { purpose: "password_reset", token: input.token },
    async (tx, token, now) => {
      const [user] = await tx
        .select({ email: users.email, email_verified_at: users.email_verified_at })
        .from(users)
        .where(and(eq(users.id, token.user_id), eq(users.app_id, app.id)));
      await tx
        .update(users)
        .set({
          password_hash: passwordHash,
          email_verified_at: user ? verifiedAfter(user, token, now) : null,
          updated_at: now,
        })
        .where(and(eq(users.id, token.user_id), eq(users.app_id, app.id)));
      await recordAuditIn(
        tx,
        ctx.audit,
        {
          appId: app.id,
          action: "password.reset",
          actor: { type: "user", id: token.user_id },
          target: { type: "user", id: token.user_id },
        },
        now,
      );
      return { userId: token.user_id, now };
    },
  );
  if (!redeemed) throw new ApiError("invalid_request", passwordMessages.invalidLink);
  await revokeUserTokens(ctx, redeemed.value.userId, redeemed.value.now, "password_reset");
}

/**
 * `users/me/password`: checks the current password as a sign-in does (a wrong one counts towards
 * the lockout), sets the new one, ends the user's other sessions (the caller's stays) and tells
 * the address. Answers the outbox ids queued.
 */
export async function changePassword(
  ctx: ServiceContext,
  app: AppRecord,
  caller: { userId: string; sessionId: string | undefined },
  input: { current_password: string; new_password: string },
  fields = { current: "json.current_password", next: "json.new_password" },
) {
  const [current] = await ctx.db
    .select()
    .from(users)
    .where(and(eq(users.id, caller.userId), eq(users.app_id, app.id)));
  if (!current) throw new ApiError("not_found", "No such user in this app");
  await assertCurrentPassword(ctx, app, current, input.current_password, {
    field: fields.current,
    during: "password_change",
  });
  await checkPassword(ctx, app, input.new_password, fields.next);
  const passwordHash = await ctx.passwords.hash(input.new_password);
  const mailId = await audited(
    ctx,
    async (tx, now) => {
      await tx
        .update(users)
        .set({ password_hash: passwordHash, updated_at: now })
        .where(eq(users.id, current.id));
      return queueEmail(
        tx,
        app,
        { kind: "password_changed", to: current.email, variables: { email: current.email } },
        now,
      );
    },
    {
      appId: app.id,
      action: "password.changed",
      target: { type: "user", id: current.id },
    },
  );
  const now = ctx.clock.now();
  for (const session of await listSessions(ctx, current.id)) {
    if (session.id !== caller.sessionId) await endSession(ctx, session.id, "password_changed", now);
  }
  return [mailId];
}
