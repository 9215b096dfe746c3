import { and, eq } from "drizzle-orm";
import { users } from "../db/schema";
import { ApiError } from "../lib/errors";
import type { Database } from "../ports";
import { emailSignInUrl } from "./account-links";
import {
  type AccountToken,
  issueAccountToken,
  redeemAccountCode,
  redeemAccountToken,
  verifiedAfter,
} from "./account-tokens";
import { type AppRecord, assertAppActive } from "./apps";
import { recordAudit, recordAuditIn } from "./audit";
import type { ServiceContext } from "./context";
import { queueEmail } from "./email";
import { emailSignInMessages } from "./email-sign-in.messages";
import { mailToAccount } from "./mailed-secrets";
import type { TokenResponse } from "./session-tokens";
import { signInOrChallenge } from "./sign-in";
import { signInMessages } from "./sign-in.messages";
import { signInRefusal } from "./sign-in-rules";
import { findUserByEmail, type UserRecord } from "./users";

/**
 * `otp/start`: mails a sign-in code and link to the account of `email`, if there is one; the
 * answer and the work are the same either way. Answers the outbox ids queued.
 */
export async function startEmailSignIn(
  ctx: ServiceContext,
  app: AppRecord,
  input: { email: string; channel: "code" | "link"; base: string },
) {
  assertAppActive(app, "forbidden");
  return mailToAccount(
    ctx,
    app,
    input.email,
    async (tx, user, now) => {
      const { token, code, minutes } = await issueAccountToken(
        tx,
        app,
        { userId: user.id, purpose: "email_otp", email: user.email, withCode: true },
        now,
      );
      return queueEmail(
        tx,
        app,
        {
          kind: "email_otp",
          to: user.email,
          variables: {
            email: user.email,
            code,
            link: emailSignInUrl(input.base, app, token),
            minutes,
          },
        },
        now,
      );
    },
    (user) => ({
      appId: app.id,
      action: "otp.sent",
      actor: { type: "anonymous", id: null },
      target: { type: "user", id: user.id },
      metadata: { channel: input.channel },
    }),
  );
}

/**
 * `grant_type=email_otp`: a mailed code (with the address) or the link's token signs in, once.
 * Wrong ones count towards the lockout. The address counts as verified, and 2FA still applies.
 */
export async function emailOtpGrant(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    email?: string | undefined;
    code?: string | undefined;
    emailToken?: string | undefined;
    issuer: string;
  },
): Promise<TokenResponse> {
  assertAppActive(app, "invalid_grant");
  const spend = (tx: Database, token: AccountToken, now: Date) =>
    useToken(ctx, app, tx, token, now);
  const claimed = input.emailToken
    ? undefined
    : await findUserByEmail(ctx.db, app.id, input.email ?? "");
  const redeemed = input.emailToken
    ? await redeemAccountToken(ctx, app, { purpose: "email_otp", token: input.emailToken }, spend)
    : await redeemAccountCode(
        ctx,
        app,
        { purpose: "email_otp", userId: claimed?.id, code: input.code ?? "" },
        spend,
      );
  if (!redeemed) {
    await recordAudit(
      ctx,
      {
        appId: app.id,
        action: "otp.failed",
        actor: { type: "anonymous", id: null },
        ...(claimed ? { target: { type: "user", id: claimed.id } } : {}),
        metadata: { method: input.emailToken ? "link" : "code" },
      },
      ctx.clock.now(),
    );
    throw new ApiError("invalid_grant", emailSignInMessages.wrongCode);
  }
  return signInOrChallenge(ctx, app, redeemed.value, {
    issuer: input.issuer,
    grantType: "email_otp",
  });
}

/** Inside the spend's transaction: a user who may not sign in keeps the code unspent. */
async function useToken(
  ctx: ServiceContext,
  app: AppRecord,
  tx: Database,
  token: AccountToken,
  now: Date,
): Promise<UserRecord> {
  const [user] = await tx
    .select()
    .from(users)
    .where(and(eq(users.id, token.user_id), eq(users.app_id, app.id)));
  if (!user || (await signInRefusal(tx, user, now))) {
    throw new ApiError("invalid_grant", signInMessages.userMayNotSignIn);
  }
  const verifiedAt = verifiedAfter(user, token, now);
  if (verifiedAt !== user.email_verified_at) {
    await tx.update(users).set({ email_verified_at: verifiedAt }).where(eq(users.id, user.id));
  }
  await recordAuditIn(
    tx,
    ctx.audit,
    {
      appId: app.id,
      action: "otp.used",
      actor: { type: "user", id: user.id },
      target: { type: "user", id: user.id },
    },
    now,
  );
  return { ...user, email_verified_at: verifiedAt };
}
