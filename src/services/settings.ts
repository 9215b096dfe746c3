import type { AppSettings } from "../db/schema/settings";
import { AppSettingsSchema } from "../db/schema/settings";

/** The longest an access token can live under any app's settings: revocation markers outlive it. */
export const MAX_ACCESS_TOKEN_TTL_SECONDS = 86_400;

/** Longer passwords are refused before hashing: Argon2 would hash any length, slowly. */
export const MAX_PASSWORD_BYTES = 1024;

const resolved = new WeakMap<Partial<AppSettings>, Readonly<AppSettings>>();
const NONE_STORED = {};

/**
 * An app's settings with the defaults filled in. Parsed once per stored object: cached app
 * records keep theirs, so a request does not run the schema again. Shared, so read only.
 */
export function resolveSettings(
  stored: Partial<AppSettings> | null | undefined,
): Readonly<AppSettings> {
  const key = stored ?? NONE_STORED;
  let settings = resolved.get(key);
  if (!settings) {
    settings = AppSettingsSchema.parse(key);
    resolved.set(key, settings);
  }
  return settings;
}

/** Whether a password meets the app's policy; the reasons it does not, otherwise. */
export function passwordProblems(
  password: string,
  policy: AppSettings["password_policy"],
): string[] {
  const problems: string[] = [];
  if ([...password].length < policy.min_length) {
    problems.push(`must be at least ${policy.min_length} characters`);
  }
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) {
    problems.push(`must be at most ${MAX_PASSWORD_BYTES} bytes`);
  }
  if (policy.require_uppercase && !/\p{Lu}/u.test(password))
    problems.push("must contain an uppercase letter");
  if (policy.require_lowercase && !/\p{Ll}/u.test(password))
    problems.push("must contain a lowercase letter");
  if (policy.require_digit && !/\p{Nd}/u.test(password)) problems.push("must contain a digit");
  if (policy.require_symbol && !/[^\p{L}\p{Nd}]/u.test(password))
    problems.push("must contain a symbol");
  return problems;
}
