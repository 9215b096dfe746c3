import { and, desc, eq, gt, isNull } from "drizzle-orm";
import { type AccountTokenPurpose, accountTokens } from "../db/schema";
import { randomSecret, type SecretPrefix, sha256Hex, timingSafeEqual } from "../lib/crypto";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import type { AppRecord } from "./apps";
import type { ServiceContext } from "./context";

export type AccountToken = typeof accountTokens.$inferSelect;

/** Each purpose has its own prefix (recognised and redacted wherever it turns up) and lifetime. */
const purposes: Record<AccountTokenPurpose, { prefix: SecretPrefix; minutes: number }> = {
  email_verification: { prefix: "emv_", minutes: 24 * 60 },
  password_reset: { prefix: "pwr_", minutes: 30 },
  email_otp: { prefix: "otl_", minutes: 10 },
  email_change: { prefix: "emc_", minutes: 24 * 60 },
};

export const accountTokenMinutes = (purpose: AccountTokenPurpose) => purposes[purpose].minutes;

/** Digits of a sign-in code typed by hand. */
export const EMAIL_CODE_DIGITS = 6;

/** A uniformly random decimal code (rejection sampling: no digit is likelier than another). */
function randomCode(digits: number): string {
  const limit = 10 ** digits;
  const bound = Math.floor(0x1_0000_0000 / limit) * limit;
  const [value] = crypto.getRandomValues(new Uint32Array(1));
  if (value === undefined || value >= bound) return randomCode(digits);
  return String(value % limit).padStart(digits, "0");
}

/**
 * Issues a one-time token for a user and purpose inside the caller's transaction, ending any
 * earlier one of the same purpose (a new link supersedes the old). With `withCode`, also a short
 * code to type instead of following the link. Only hashes are stored.
 */
export async function issueAccountToken(
  tx: Database,
  app: AppRecord,
  input: { userId: string; purpose: AccountTokenPurpose; email: string; withCode?: boolean },
  now: Date,
) {
  const { prefix, minutes } = purposes[input.purpose];
  await tx
    .update(accountTokens)
    .set({ used_at: now })
    .where(
      and(
        eq(accountTokens.user_id, input.userId),
        eq(accountTokens.purpose, input.purpose),
        isNull(accountTokens.used_at),
      ),
    );
  const token = randomSecret(prefix);
  const code = input.withCode ? randomCode(EMAIL_CODE_DIGITS) : undefined;
  await tx.insert(accountTokens).values({
    id: newId("atk"),
    app_id: app.id,
    user_id: input.userId,
    purpose: input.purpose,
    token_hash: await sha256Hex(token),
    code_hash: code ? await sha256Hex(`${input.userId}:${code}`) : null,
    email: input.email,
    expires_at: new Date(now.getTime() + minutes * 60_000),
    created_at: now,
  });
  return { token, code, minutes };
}

/**
 * When the user's email counts as verified once a mailed link or code of theirs was spent: as it
 * was if it already was; now if the token went to the address the account still has; otherwise
 * not (a token proves the address it reached, not one the account moved to since).
 */
export function verifiedAfter(
  user: { email: string; email_verified_at: Date | null },
  token: Pick<AccountToken, "email">,
  now: Date,
) {
  if (user.email_verified_at) return user.email_verified_at;
  return user.email.toLowerCase() === token.email.toLowerCase() ? now : null;
}

/** Keys of the lockout a guess at a mailed secret counts towards: the caller's IP, and the user. */
function attemptKeys(ctx: ServiceContext, userId?: string) {
  return [
    ...(userId ? [`acct:${userId}`] : []),
    ...(ctx.audit.ipAddress ? [`ip:${ctx.audit.ipAddress}`] : []),
  ];
}

/**
 * Spends a mailed token of this app and purpose and runs `effect` in the same transaction, so the
 * token is used exactly when the change it allows commits. Unknown, used, expired, superseded,
 * other-purpose and other-app tokens all answer `undefined` and count as a failed attempt of the
 * caller's IP; a locked IP gets 429 before any lookup.
 */
export async function redeemAccountToken<T>(
  ctx: ServiceContext,
  app: AppRecord,
  input: { purpose: AccountTokenPurpose; token: string },
  effect: (tx: Database, token: AccountToken, now: Date) => Promise<T>,
): Promise<{ value: T } | undefined> {
  const keys = attemptKeys(ctx);
  await ctx.bruteForce.assertNotLocked(keys);
  const redeemed = input.token.startsWith(purposes[input.purpose].prefix)
    ? await spend(ctx, app, input.purpose, await sha256Hex(input.token), effect)
    : undefined;
  if (!redeemed) await ctx.bruteForce.recordFailure(keys);
  return redeemed;
}

/**
 * Spends the user's current sign-in code, compared in constant time. A wrong code counts towards
 * the lockout of the user and of the IP, both checked first.
 */
export async function redeemAccountCode<T>(
  ctx: ServiceContext,
  app: AppRecord,
  input: { purpose: AccountTokenPurpose; userId: string | undefined; code: string },
  effect: (tx: Database, token: AccountToken, now: Date) => Promise<T>,
): Promise<{ value: T } | undefined> {
  const keys = attemptKeys(ctx, input.userId);
  await ctx.bruteForce.assertNotLocked(keys);
  const now = ctx.clock.now();
  const [current] = input.userId
    ? await ctx.db
        .select()
        .from(accountTokens)
        .where(
          and(
            eq(accountTokens.user_id, input.userId),
            eq(accountTokens.app_id, app.id),
            eq(accountTokens.purpose, input.purpose),
            isNull(accountTokens.used_at),
            gt(accountTokens.expires_at, now),
          ),
        )
        .orderBy(desc(accountTokens.created_at))
        .limit(1)
    : [];
  const presented = await sha256Hex(`${input.userId ?? "-"}:${input.code}`);
  const matches = Boolean(current?.code_hash && timingSafeEqual(current.code_hash, presented));
  const redeemed =
    current && matches
      ? await spend(ctx, app, input.purpose, current.token_hash, effect)
      : undefined;
  if (!redeemed) await ctx.bruteForce.recordFailure(keys);
  return redeemed;
}

async function spend<T>(
  ctx: ServiceContext,
  app: AppRecord,
  purpose: AccountTokenPurpose,
  tokenHash: string,
  effect: (tx: Database, token: AccountToken, now: Date) => Promise<T>,
): Promise<{ value: T } | undefined> {
  return ctx.db.transaction(async (tx) => {
    const now = ctx.clock.now();
    const [token] = await tx
      .update(accountTokens)
      .set({ used_at: now })
      .where(
        and(
          eq(accountTokens.token_hash, tokenHash),
          eq(accountTokens.app_id, app.id),
          eq(accountTokens.purpose, purpose),
          isNull(accountTokens.used_at),
          gt(accountTokens.expires_at, now),
        ),
      )
      .returning();
    if (!token) return undefined;
    return { value: await effect(tx, token, now) };
  });
}
