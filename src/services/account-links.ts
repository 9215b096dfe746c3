import type { AppRecord } from "./apps";
import { settingsOf } from "./apps";

/** The account pages Heimdall serves for an app (`/v1/apps/{app}/pages/…`). */
export type AccountPage = "signup" | "forgot-password" | "verify-email" | "reset-password";

/** The absolute URL of an account page; `base` is the public origin (PUBLIC_URL). */
export function accountPageUrl(base: string, app: AppRecord, page: AccountPage, token?: string) {
  const url = new URL(`/v1/apps/${encodeURIComponent(app.name)}/pages/${page}`, base);
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

/** Where the hosted pages send a user when done: the app's front end, else Heimdall's console. */
export function accountReturnUrl(base: string, app: AppRecord) {
  return (
    settingsOf(app).account_return_url ??
    new URL(`/#app=${encodeURIComponent(app.name)}`, base).toString()
  );
}

/**
 * The link of a sign-in email: the app's front end (or the console) with the one-time token in
 * the fragment, which browsers never send to a server; the page exchanges it with
 * `grant_type=email_otp` and `email_token`.
 */
export function emailSignInUrl(base: string, app: AppRecord, token: string) {
  const target = settingsOf(app).account_return_url;
  if (target) return `${target.split("#")[0]}#email_token=${encodeURIComponent(token)}`;
  return new URL(
    `/#app=${encodeURIComponent(app.name)}&email_token=${encodeURIComponent(token)}`,
    base,
  ).toString();
}
