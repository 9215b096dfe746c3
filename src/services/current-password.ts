import { ApiError, type ErrorCode } from "../lib/errors";
import type { AppRecord } from "./apps";
import { recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import type { UserRecord } from "./users";

/** What a signed-in user confirms with their password. */
export type PasswordConfirmation = "password_change" | "email_change" | "erasure";

/**
 * A signed-in user's password, confirmed before a sensitive change (a new password or email,
 * erasure), as a sign-in checks it: a lockout first, failures audited and counted. Keyed by user
 * and IP together, so wrong guesses by the holder of a stolen token lock this check only, never
 * the user's sign-in. Every path that asks for the current password goes through here.
 */
export async function assertCurrentPassword(
  ctx: ServiceContext,
  app: AppRecord,
  user: Pick<UserRecord, "id" | "password_hash">,
  password: string,
  options: { field: string; during: PasswordConfirmation; code?: ErrorCode },
) {
  const keys = [`pwd:${user.id}:${ctx.audit.ipAddress ?? "-"}`];
  await ctx.bruteForce.assertNotLocked(keys);
  const check = await ctx.passwords.verify(user.password_hash ?? ctx.passwords.dummyHash, password);
  if (user.password_hash && check.valid) return;
  const now = ctx.clock.now();
  const actor = { type: "user", id: user.id } as const;
  const target = { type: "user", id: user.id };
  await recordAudit(
    ctx,
    {
      appId: app.id,
      action: "auth.login.failed",
      actor,
      target,
      metadata: { reason: "wrong_password", during: options.during },
    },
    now,
  );
  const locked = await ctx.bruteForce.recordFailure(keys);
  if (locked.length > 0) {
    await recordAudit(
      ctx,
      { appId: app.id, action: "auth.lockout", actor, target, metadata: { locked } },
      now,
    );
  }
  throw new ApiError(options.code ?? "invalid_request", "The password is not right", {
    details: [{ field: options.field, reason: "does not match" }],
  });
}
