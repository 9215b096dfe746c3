import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { issuerBase } from "../../http/links";
import { accountReturnUrl } from "../../services/account-links";
import { type AppRecord, findAppByName } from "../../services/apps";

/** The app a hosted page is for, from its path. */
export function appOfPage(c: Context<AppEnv>) {
  return findAppByName(c.var.services, c.req.param("app_name") ?? "");
}

/**
 * Where "Continue" leads: the `continue` query parameter when it is this app's own OAuth
 * authorization request (so a sign-up or reset started there returns to it), else the app's
 * return URL. Nothing else is honoured: no other origin, no other app.
 */
export function continueUrl(c: Context<AppEnv>, app: AppRecord) {
  const wanted = c.req.query("continue") ?? "";
  const authorize = `/v1/apps/${encodeURIComponent(app.name)}/oauth/authorize?`;
  if (wanted.startsWith(authorize) && !/[\s\\]/.test(wanted)) {
    return new URL(wanted, issuerBase(c)).toString();
  }
  return accountReturnUrl(issuerBase(c), app);
}
