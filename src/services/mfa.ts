import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { renderSVG } from "uqr";
import { recoveryCodes, users } from "../db/schema";
import { sha256Hex, timingSafeEqual } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { AppRecord } from "./apps";
import { audited, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { mfaMessages } from "./mfa.messages";
import type { UserRecord } from "./users";

/** RFC 6238 as every authenticator app reads it: SHA-1, 6 digits, 30 s; ±1 step of clock skew. */
const TOTP_PERIOD = 30;
const TOTP_WINDOW = 1;
const RECOVERY_CODES = 10;
/** Recovery code alphabet: no 0/O or 1/I/L to misread. */
const ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";

export interface SecondFactor {
  otp?: string | undefined;
  recovery_code?: string | undefined;
}

/**
 * Every path that checks a second-factor code, each through `checkSecondFactor` and so through
 * its lockout; a platform sign-in with 2FA on is completed at the token endpoint.
 */
export const SECOND_FACTOR_PATHS = [
  "token_endpoint",
  "oauth_authorize",
  "mfa_verify",
  "mfa_disable",
] as const;
export type SecondFactorPath = (typeof SECOND_FACTOR_PATHS)[number];

function totpOf(app: AppRecord, user: Pick<UserRecord, "email">, base32: string) {
  return new TOTP({
    issuer: app.display_name,
    label: user.email,
    secret: Secret.fromBase32(base32),
    period: TOTP_PERIOD,
  });
}

/**
 * Starts enrollment: a new secret, stored encrypted, not yet in force. Answers the secret, the
 * `otpauth://` URL authenticator apps import, and that URL as a QR code (SVG).
 */
export async function enroll(ctx: ServiceContext, app: AppRecord, user: UserRecord) {
  if (user.totp_enabled_at) throw new ApiError("conflict", mfaMessages.onAlreadyDisableFirst);
  const secret = new Secret({ size: 20 });
  const totp = totpOf(app, user, secret.base32);
  const encrypted = await ctx.sealer.encrypt(secret.base32);
  await audited(
    ctx,
    (tx) =>
      tx
        .update(users)
        .set({ totp_secret_encrypted: encrypted, totp_last_step: null })
        .where(eq(users.id, user.id)),
    { appId: app.id, action: "mfa.enrollment.started", target: { type: "user", id: user.id } },
  );
  const url = totp.toString();
  return { secret: secret.base32, otpauth_url: url, qr_code_svg: renderSVG(url) };
}

/**
 * Confirms enrollment with a first code: 2FA is on from now, and the answer carries ten one-time
 * recovery codes (stored hashed, replacing any earlier ones).
 */
export async function confirm(ctx: ServiceContext, app: AppRecord, user: UserRecord, otp: string) {
  if (user.totp_enabled_at) throw new ApiError("conflict", mfaMessages.onAlready);
  if (!user.totp_secret_encrypted) throw new ApiError("conflict", mfaMessages.enrollFirst);
  if (!(await checkSecondFactor(ctx, app, user, { otp }, "mfa_verify"))) {
    throw new ApiError("validation_error", mfaMessages.invalidCode, {
      details: [{ field: "code", reason: "does not match the authenticator" }],
    });
  }
  const codes = Array.from({ length: RECOVERY_CODES }, recoveryCode);
  const hashes = await Promise.all(codes.map((code) => sha256Hex(normalize(code))));
  await audited(
    ctx,
    async (tx, now) => {
      await tx.update(users).set({ totp_enabled_at: now }).where(eq(users.id, user.id));
      await tx.delete(recoveryCodes).where(eq(recoveryCodes.user_id, user.id));
      await tx.insert(recoveryCodes).values(
        hashes.map((code_hash) => ({
          id: newId("rcv"),
          user_id: user.id,
          code_hash,
          created_at: now,
        })),
      );
    },
    { appId: app.id, action: "mfa.enabled", target: { type: "user", id: user.id } },
  );
  return codes;
}

/** Turns 2FA off; needs a valid code (or a recovery code) so a stolen session cannot. */
export async function disable(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  factor: SecondFactor,
) {
  if (!user.totp_enabled_at) throw new ApiError("conflict", mfaMessages.off);
  if (!(await checkSecondFactor(ctx, app, user, factor, "mfa_disable"))) {
    throw new ApiError("validation_error", mfaMessages.invalidCode, {
      details: [{ field: factor.recovery_code ? "recovery_code" : "code", reason: "not valid" }],
    });
  }
  await audited(
    ctx,
    async (tx) => {
      await tx
        .update(users)
        .set({ totp_secret_encrypted: null, totp_enabled_at: null, totp_last_step: null })
        .where(eq(users.id, user.id));
      await tx.delete(recoveryCodes).where(eq(recoveryCodes.user_id, user.id));
    },
    { appId: app.id, action: "mfa.disabled", target: { type: "user", id: user.id } },
  );
}

/**
 * The one check of a second-factor code (a TOTP code or a recovery code, each accepted once),
 * whatever the path: refused with 429 while the user (`mfa:<user>`) or the IP is locked, before
 * the code is looked at; a wrong code is audited (`auth.mfa.failed`) and counted towards both
 * locks, and the lock it sets is audited (`auth.lockout`). False when the code is not valid.
 */
export async function checkSecondFactor(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  factor: SecondFactor,
  via: SecondFactorPath,
): Promise<boolean> {
  const attemptKeys = [
    `mfa:${user.id}`,
    ...(ctx.audit.ipAddress ? [`ip:${ctx.audit.ipAddress}`] : []),
  ];
  await ctx.bruteForce.assertNotLocked(attemptKeys);
  const valid = factor.otp
    ? await spendTotp(ctx, app, user, factor.otp)
    : factor.recovery_code
      ? await spendRecoveryCode(ctx, user, factor.recovery_code)
      : false;
  if (valid) return true;
  const now = ctx.clock.now();
  const audit = (action: string, metadata: Record<string, unknown>) =>
    recordAudit(
      ctx,
      {
        appId: app.id,
        action,
        actor: { type: "user", id: user.id },
        target: { type: "user", id: user.id },
        metadata,
      },
      now,
    );
  await audit("auth.mfa.failed", { factor: factor.recovery_code ? "recovery_code" : "otp", via });
  const locked = await ctx.bruteForce.recordFailure(attemptKeys);
  if (locked.length > 0) await audit("auth.lockout", { locked, via });
  return false;
}

/**
 * Accepts a code within ±1 step, once: the step it matched is stored, and a code of that step
 * or an earlier one is refused afterwards. The conditional update makes two concurrent uses of
 * one code accept only one.
 */
async function spendTotp(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  otp: string,
): Promise<boolean> {
  if (!user.totp_secret_encrypted || !/^\d{6}$/.test(otp)) return false;
  const totp = totpOf(app, user, await ctx.sealer.decrypt(user.totp_secret_encrypted));
  const timestamp = ctx.clock.now().getTime();
  const delta = totp.validate({ token: otp, timestamp, window: TOTP_WINDOW });
  if (delta === null) return false;
  const step = totp.counter({ timestamp }) + delta;
  const [spent] = await ctx.db
    .update(users)
    .set({ totp_last_step: step })
    .where(
      and(eq(users.id, user.id), or(isNull(users.totp_last_step), lt(users.totp_last_step, step))),
    )
    .returning({ id: users.id });
  return Boolean(spent);
}

async function spendRecoveryCode(ctx: ServiceContext, user: UserRecord, code: string) {
  const hash = await sha256Hex(normalize(code));
  const [spent] = await ctx.db
    .update(recoveryCodes)
    .set({ used_at: ctx.clock.now() })
    .where(
      and(
        eq(recoveryCodes.user_id, user.id),
        eq(recoveryCodes.code_hash, hash),
        isNull(recoveryCodes.used_at),
      ),
    )
    .returning({ hash: recoveryCodes.code_hash });
  // The lookup was by hash; compare again without an early exit before trusting it.
  return Boolean(spent && timingSafeEqual(spent.hash, hash));
}

/** A signed-in user's row with its 2FA columns (the caller of the `…/2fa` routes). */
export async function secondFactorUser(ctx: ServiceContext, userId: string) {
  const [user] = await ctx.db.select().from(users).where(eq(users.id, userId));
  if (!user) throw new Error("an authenticated user without a row");
  return user;
}

/** How many recovery codes the user has left. */
export async function recoveryCodesLeft(ctx: ServiceContext, userId: string) {
  const [row] = await ctx.db
    .select({ left: sql<number>`count(*)::int` })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.user_id, userId), isNull(recoveryCodes.used_at)));
  return Number(row?.left ?? 0);
}

/** `XXXX-XXXX-XX`: 10 characters of a 31-letter alphabet, ~49 bits, drawn without bias. */
function recoveryCode() {
  const limit = 256 - (256 % ALPHABET.length);
  let chars = "";
  while (chars.length < 10) {
    for (const byte of crypto.getRandomValues(new Uint8Array(16))) {
      if (byte < limit && chars.length < 10) chars += ALPHABET[byte % ALPHABET.length];
    }
  }
  return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8)}`;
}

const normalize = (code: string) => code.replace(/[\s-]/g, "").toUpperCase();
