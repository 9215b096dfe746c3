import type { Context } from "hono";
import { cors } from "hono/cors";
import type { AppEnv } from "../http/app-env";
import type { Ports } from "../ports";
import { createAppOrigins } from "../services/cors-origins";

/**
 * CORS for browsers: `CORS_ORIGINS` (or `*`), plus every active app's `cors_origins` setting.
 * A preflight carries no token, so it cannot tell which app it is for; the union is what an
 * origin may call, and the bearer token still decides what it may do. The apps' origins are
 * read at most once a minute per isolate.
 */
export function corsPolicy(ports: Ports) {
  const configured = ports.config.CORS_ORIGINS;
  const appOrigins = createAppOrigins({ clock: ports.clock });

  return cors({
    origin: configured.includes("*")
      ? "*"
      : async (origin, c: Context<AppEnv>) =>
          configured.includes(origin) || (await appOrigins.has(c.var.services, origin))
            ? origin
            : null,
    allowHeaders: ["Authorization", "Content-Type", "X-API-Key", "X-Request-Id"],
    exposeHeaders: [
      "X-Request-Id",
      "X-RateLimit-Limit",
      "X-RateLimit-Remaining",
      "X-RateLimit-Reset",
      "Retry-After",
    ],
    maxAge: 600,
  });
}
