import { and, eq, ne, sql } from "drizzle-orm";
import { users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { accountPageUrl } from "./account-links";
import { issueAccountToken, redeemAccountToken } from "./account-tokens";
import { type AppRecord, assertAppActive } from "./apps";
import { audited, recordAuditIn } from "./audit";
import type { ServiceContext } from "./context";
import { assertCurrentPassword } from "./current-password";
import { mayMail, queueEmail } from "./email";
import { signupMessages } from "./signup.messages";
import { findUser, findUserByEmail, type UserView } from "./users";

const invalidLink = () => new ApiError("invalid_request", signupMessages.invalidLink);

/**
 * Spends a mailed link: an `emv_…` verification marks the address verified, an `emc_…` change
 * makes the new address the user's (verified: the link reached it). Bad, used, expired,
 * superseded and other apps' links are one 400 and count towards the IP lockout; an address
 * taken since the change was asked is a 409 and leaves the link unspent.
 */
export async function verifyEmail(
  ctx: ServiceContext,
  app: AppRecord,
  token: string,
): Promise<UserView> {
  assertAppActive(app, "forbidden");
  const purpose = token.startsWith("emc_") ? "email_change" : "email_verification";
  const redeemed = await redeemAccountToken(
    ctx,
    app,
    { purpose, token },
    async (tx, spent, now) => {
      const [user] = await tx
        .select()
        .from(users)
        .where(and(eq(users.id, spent.user_id), eq(users.app_id, app.id)));
      if (!user) return undefined;
      if (purpose === "email_verification") {
        // A link to an address the user has since left proves nothing about the current one.
        if (user.email.toLowerCase() !== spent.email.toLowerCase()) return undefined;
        await tx
          .update(users)
          .set({ email_verified_at: user.email_verified_at ?? now, updated_at: now })
          .where(eq(users.id, user.id));
        await recordAuditIn(tx, ctx.audit, verifiedEvent(app, user.id, "email.verified", {}), now);
        return user.id;
      }
      const [taken] = await tx
        .select({ id: users.id })
        .from(users)
        .where(
          and(
            eq(users.app_id, app.id),
            ne(users.id, user.id),
            sql`lower(${users.email}) = lower(${spent.email})`,
          ),
        );
      if (taken) throw new ApiError("conflict", signupMessages.emailTaken);
      await tx
        .update(users)
        .set({ email: spent.email, email_verified_at: now, updated_at: now })
        .where(eq(users.id, user.id));
      await recordAuditIn(
        tx,
        ctx.audit,
        verifiedEvent(app, user.id, "email.changed", { from: user.email, to: spent.email }),
        now,
      );
      return user.id;
    },
  );
  if (!redeemed?.value) throw invalidLink();
  return findUser(ctx, app.id, redeemed.value);
}

function verifiedEvent(
  app: AppRecord,
  userId: string,
  action: string,
  metadata: Record<string, unknown>,
) {
  return {
    appId: app.id,
    action,
    actor: { type: "user" as const, id: userId },
    target: { type: "user", id: userId },
    metadata,
  };
}

/**
 * A signed-in user asks to move to another address, proving it is them with their password
 * (wrong passwords count towards the lockout of the account and IP): the new address gets a
 * confirmation link, the old one a notice. Nothing changes until the link is followed.
 */
export async function requestEmailChange(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  input: { email: string; password: string },
  base: string,
): Promise<string[]> {
  assertAppActive(app, "forbidden");
  const [user] = await ctx.db
    .select()
    .from(users)
    .where(and(eq(users.app_id, app.id), eq(users.id, userId)));
  if (!user) throw new ApiError("not_found", "No such user in this app");
  await assertCurrentPassword(ctx, app, user, input.password, {
    field: "json.password",
    during: "email_change",
  });
  if (input.email.toLowerCase() === user.email.toLowerCase()) {
    throw new ApiError("validation_error", signupMessages.sameEmail, {
      details: [{ field: "json.email", reason: "unchanged" }],
    });
  }
  if (await findUserByEmail(ctx.db, app.id, input.email)) {
    throw new ApiError("conflict", signupMessages.emailTaken);
  }
  const toNew = await mayMail(ctx, app, input.email);
  const toOld = await mayMail(ctx, app, user.email);
  return audited(
    ctx,
    async (tx, now) => {
      const { token, minutes } = await issueAccountToken(
        tx,
        app,
        { userId: user.id, purpose: "email_change", email: input.email },
        now,
      );
      const mail: string[] = [];
      if (toNew) {
        mail.push(
          await queueEmail(
            tx,
            app,
            {
              kind: "email_change",
              to: input.email,
              variables: {
                email: input.email,
                link: accountPageUrl(base, app, "verify-email", token),
                minutes,
              },
            },
            now,
          ),
        );
      }
      if (toOld) {
        mail.push(
          await queueEmail(
            tx,
            app,
            { kind: "email_changed", to: user.email, variables: { email: input.email } },
            now,
          ),
        );
      }
      return mail;
    },
    {
      appId: app.id,
      action: "email.change_requested",
      actor: { type: "user", id: user.id },
      target: { type: "user", id: user.id },
      metadata: { to: input.email },
    },
  );
}
