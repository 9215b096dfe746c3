import type { Context } from "hono";
import type { AppEnv } from "./app-env";

/**
 * An absolute path (not `//host`) of unreserved characters, and no `.` or `..` segment:
 * resolving it changes nothing.
 */
const PLAIN_PATH = /^\/(?!\/)[\w\-~./]*$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

let publicOrigin: { base: string; origin: string } | undefined;

/**
 * Absolute URL for a path: `PUBLIC_URL` when set (behind proxies), else the request's origin.
 * An absolute path resolves against the origin alone, so a plain one (every link Heimdall builds
 * from ids and names) is joined to it; anything else goes through `URL`'s resolution.
 */
export function absoluteUrl(c: Context<AppEnv>, path: string): string {
  const configured = c.get("ports").config.PUBLIC_URL;
  if (configured === undefined) return resolve(path, new URL(c.req.url).origin);
  if (publicOrigin?.base !== configured) {
    publicOrigin = { base: configured, origin: new URL(configured).origin };
  }
  return PLAIN_PATH.test(path) && !DOT_SEGMENT.test(path)
    ? publicOrigin.origin + path
    : resolve(path, configured);
}

function resolve(path: string, base: string) {
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
