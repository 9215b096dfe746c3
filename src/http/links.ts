import type { Context } from "hono";
import type { AppEnv } from "./app-env";

/** Absolute URL for a path: `PUBLIC_URL` when set (behind proxies), else the request's origin. */
export function absoluteUrl(c: Context<AppEnv>, path: string): string {
  const base = c.get("ports").config.PUBLIC_URL ?? new URL(c.req.url).origin;
  return new URL(path, base.endsWith("/") ? base : `${base}/`).toString();
}

/** Base of issuer URLs: `PUBLIC_URL`, or the request's origin when it is unset (development). */
export function issuerBase(c: Context<AppEnv>): string {
  return c.get("ports").config.PUBLIC_URL ?? new URL(c.req.url).origin;
}

/** Where the app in scope is mounted: `/v1/apps/<name>` for the admin, `/v1` for its own users. */
export function scopePath(c: Context<AppEnv>): string {
  const appName = c.req.param("app_name");
  return appName ? `/v1/apps/${encodeURIComponent(appName)}` : "/v1";
}
