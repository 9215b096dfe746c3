import type { Context } from "hono";
import type { AppEnv } from "../http/app-env";

/**
 * One `request` log event per response: method, path (never the query, which may carry a
 * device token; a secret in the path, an invite token, is redacted by the logger), status and
 * duration since `started` (`performance.now()`). A 5xx is an error, unless a tenant's own
 * service (its identity provider) caused it.
 */
export function logRequest(c: Context<AppEnv>, started: number) {
  const status = c.res.status;
  const fields = {
    method: c.req.method,
    path: c.req.path,
    status,
    duration_ms: Math.round((performance.now() - started) * 100) / 100,
  };
  if (status >= 500 && c.get("externalFailure")) c.get("logger").warn("request", fields);
  else if (status >= 500) c.get("logger").error("request", fields);
  else c.get("logger").info("request", fields);
}
