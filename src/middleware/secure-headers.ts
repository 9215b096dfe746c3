import type { Context } from "hono";
import type { AppEnv } from "../http/app-env";

/** `hono/secure-headers`' defaults, the same names and values. */
const secureHeaderList: ReadonlyArray<readonly [string, string]> = [
  ["Cross-Origin-Resource-Policy", "same-origin"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Origin-Agent-Cluster", "?1"],
  ["Referrer-Policy", "no-referrer"],
  ["Strict-Transport-Security", "max-age=15552000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-DNS-Prefetch-Control", "off"],
  ["X-Download-Options", "noopen"],
  ["X-Frame-Options", "SAMEORIGIN"],
  ["X-Permitted-Cross-Domain-Policies", "none"],
  ["X-XSS-Protection", "0"],
];

/**
 * The security headers of every response, in two steps around the route. Set with `c.header()`
 * before the route runs, they go into the headers Hono prepares for the response the route
 * builds (`c.json()`, `c.html()`…), where setting them on `c.res` would build a placeholder
 * response to copy the route's into.
 */
export function prepareSecureHeaders(c: Context<AppEnv>) {
  for (const [name, value] of secureHeaderList) c.header(name, value);
}

/** A response built outside Hono (Yoga's) never saw the prepared headers: it gets them now. */
export function completeSecureHeaders(c: Context<AppEnv>) {
  const headers = c.res.headers;
  if (headers.has("X-Content-Type-Options")) return;
  for (const [name, value] of secureHeaderList) headers.set(name, value);
  headers.delete("X-Powered-By");
}
