import { createMiddleware } from "hono/factory";
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
 * The security headers of every response. Set with `c.header()` before the route runs, they go
 * into the headers Hono prepares for the response the route builds (`c.json()`, `c.html()`…),
 * where setting them on `c.res` would build a placeholder response to copy the route's into. A
 * response built outside Hono (Yoga's) never saw them: it gets them afterwards.
 */
export function secureHeaders() {
  return createMiddleware<AppEnv>(async function secureHeadersMiddleware(c, next) {
    for (const [name, value] of secureHeaderList) c.header(name, value);
    await next();
    const headers = c.res.headers;
    if (headers.has("X-Content-Type-Options")) return;
    for (const [name, value] of secureHeaderList) headers.set(name, value);
    headers.delete("X-Powered-By");
  });
}
