import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import { Secret, TOTP } from "otpauth";
import { renderSVG } from "uqr";
import { recoveryCodes, users } from "../db/schema";
import { type Cipher, sha256Hex, timingSafeEqual } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { AppRecord } from "./apps";
import { audited, type ServiceContext } from "./audit";
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
export async function enroll(
  ctx: ServiceContext,
  sealer: Cipher,
  app: AppRecord,
  user: UserRecord,
) {
  if (user.totp_enabled_at) {
    throw new ApiError("conflict", "Two-factor authentication is on already; disable it first");
  }
  const secret = new Secret({ size: 20 });
  const totp = totpOf(app, user, secret.base32);
  const encrypted = await sealer.encrypt(secret.base32);
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
export async function confirm(
  ctx: ServiceContext,
  sealer: Cipher,
  app: AppRecord,
  user: UserRecord,
  otp: string,
) {
  if (user.totp_enabled_at) {
    throw new ApiError("conflict", "Two-factor authentication is on already");
  }
  if (!user.totp_secret_encrypted) {
    throw new ApiError("conflict", "Start enrollment first (POST /v1/users/me/2fa)");
  }
  if (!(await spendTotp(ctx, sealer, app, user, otp))) {
    throw new ApiError("validation_error", "The code is not valid", {
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
  sealer: Cipher,
  app: AppRecord,
  user: UserRecord,
  factor: SecondFactor,
) {
  if (!user.totp_enabled_at) throw new ApiError("conflict", "Two-factor authentication is off");
  if (!(await spendSecondFactor(ctx, sealer, app, user, factor))) {
    throw new ApiError("validation_error", "The code is not valid", {
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

/** A TOTP code or a recovery code, each accepted once. */
export function spendSecondFactor(
  ctx: ServiceContext,
  sealer: Cipher,
  app: AppRecord,
  user: UserRecord,
  factor: SecondFactor,
): Promise<boolean> {
  if (factor.otp) return spendTotp(ctx, sealer, app, user, factor.otp);
  if (factor.recovery_code) return spendRecoveryCode(ctx, user, factor.recovery_code);
  return Promise.resolve(false);
}

/**
 * Accepts a code within ±1 step, once: the step it matched is stored, and a code of that step
 * or an earlier one is refused afterwards. The conditional update makes two concurrent uses of
 * one code accept only one.
 */
async function spendTotp(
  ctx: ServiceContext,
  sealer: Cipher,
  app: AppRecord,
  user: UserRecord,
  otp: string,
): Promise<boolean> {
  if (!user.totp_secret_encrypted || !/^\d{6}$/.test(otp)) return false;
  const totp = totpOf(app, user, await sealer.decrypt(user.totp_secret_encrypted));
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

/** How many recovery codes the user has left. */
export async function recoveryCodesLeft(ctx: Pick<ServiceContext, "db">, userId: string) {
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
