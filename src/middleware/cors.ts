import type { Context, Next } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../http/app-env";
import type { Ports } from "../ports";
import { createAppOrigins } from "../services/cors-origins";

const exposeHeaders = [
  "X-Request-Id",
  "X-RateLimit-Limit",
  "X-RateLimit-Remaining",
  "X-RateLimit-Reset",
  "Retry-After",
];

/**
 * CORS for browsers: `CORS_ORIGINS` (or `*`), plus every active app's `cors_origins` setting.
 * A preflight carries no token, so it cannot tell which app it is for; the union is what an
 * origin may call, and the bearer token still decides what it may do. The apps' origins are
 * read at most once a minute per isolate.
 *
 * Preflights are `hono/cors`'s. Other requests get their headers on the final response, error
 * responses included: `hono/cors` sets them on `c.res` before the route runs, which builds a
 * placeholder response that the route's is then copied into, on every request. The origin is
 * still checked before the route runs, and only when the request names one. `around(c, next)`
 * runs the rest of the request inside the policy.
 */
export function corsPolicy(ports: Ports) {
  const configured = ports.config.CORS_ORIGINS;
  const appOrigins = createAppOrigins({ clock: ports.clock });
  const anyOrigin = configured.includes("*");
  const allowedOrigin = async (origin: string, c: Context<AppEnv>) =>
    configured.includes(origin) || (await appOrigins.has(c.get("services"), origin))
      ? origin
      : null;

  const preflight = cors({
    origin: anyOrigin ? "*" : allowedOrigin,
    allowHeaders: ["Authorization", "Content-Type", "X-API-Key", "X-Request-Id"],
    exposeHeaders,
    maxAge: 600,
  });
  const exposed = exposeHeaders.join(",");

  return {
    async around(c: Context<AppEnv>, next: Next) {
      if (c.req.method === "OPTIONS") return preflight(c, next);
      const origin = c.req.header("origin");
      const allowOrigin = anyOrigin ? "*" : origin ? await allowedOrigin(origin, c) : null;
      await next();
      const headers = c.res.headers;
      if (allowOrigin) headers.set("Access-Control-Allow-Origin", allowOrigin);
      headers.set("Access-Control-Expose-Headers", exposed);
      if (!anyOrigin) headers.append("Vary", "Origin");
    },
  };
}
