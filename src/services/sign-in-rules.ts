import { ApiError } from "../lib/errors";
import type { Database } from "../ports";
import { mfaTokenProfile, signAccessToken } from "./access-tokens";
import { type AppRecord, settingsOf } from "./apps";
import { isUserBanned } from "./bans";
import type { ServiceContext } from "./context";
import { signInMessages } from "./sign-in.messages";
import type { UserRecord } from "./users";

/** How long a sign-in (password or platform) waits for its second factor. */
export const MFA_TOKEN_TTL_SECONDS = 300;

/**
 * Why a user may not get tokens now, audited as the reason of a refused sign-in: deactivated,
 * or banned. Undefined when they may.
 */
export async function signInRefusal(
  db: Database,
  user: Pick<UserRecord, "id" | "status">,
  now: Date,
): Promise<"user_deactivated" | "user_banned" | undefined> {
  if (user.status !== "active") return "user_deactivated";
  return signInRefusalKnowing(user, await isUserBanned(db, user.id, now));
}

/** {@link signInRefusal} where whether the user is banned was read already (with the user). */
export function signInRefusalKnowing(
  user: Pick<UserRecord, "status">,
  banned: boolean,
): "user_deactivated" | "user_banned" | undefined {
  if (user.status !== "active") return "user_deactivated";
  if (banned) return "user_banned";
  return undefined;
}

/**
 * The refusal of a user whose app requires a verified email and who has not verified theirs:
 * given only once the password (or other credential) was right, so it reveals nothing to a
 * guesser. Undefined when they may sign in.
 */
export function emailVerificationRefusal(
  app: AppRecord,
  user: Pick<UserRecord, "email_verified_at">,
): ApiError | undefined {
  if (!settingsOf(app).require_email_verification || user.email_verified_at) return undefined;
  return new ApiError("email_not_verified", signInMessages.emailNotVerified);
}

/**
 * The `mfa_required` refusal of a sign-in whose user turned on 2FA: it carries a short-lived
 * `mfa_token` naming the user and app, completed with `grant_type=mfa_otp`.
 */
export async function mfaChallenge(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  issuer: string,
): Promise<ApiError> {
  const { token } = await signAccessToken(ctx, {
    issuer,
    app: { id: app.id, name: app.name, alg: settingsOf(app).signing_algorithm },
    subject: user.id,
    roles: [],
    permissions: [],
    ttlSeconds: MFA_TOKEN_TTL_SECONDS,
    profile: mfaTokenProfile,
  });
  return new ApiError("mfa_required", signInMessages.mfaRequired, { mfaToken: token });
}
