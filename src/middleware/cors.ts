import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { cors } from "hono/cors";
import { apps } from "../db/schema";
import type { AppEnv } from "../http/app-env";
import type { Ports } from "../ports";

const APP_ORIGINS_TTL_MS = 60_000;

/**
 * CORS for browsers: `CORS_ORIGINS` (or `*`), plus every active app's `cors_origins` setting.
 * A preflight carries no token, so it cannot tell which app it is for; the union is what an
 * origin may call, and the bearer token still decides what it may do. The apps' origins are
 * read at most once a minute per isolate.
 */
export function corsPolicy(ports: Ports) {
  const configured = ports.config.CORS_ORIGINS;
  let appOrigins: { loadedAt: number; origins: Set<string> } | undefined;

  async function fromApps(c: Context<AppEnv>) {
    const now = ports.clock.now().getTime();
    if (!appOrigins || now - appOrigins.loadedAt > APP_ORIGINS_TTL_MS) {
      const rows = await c.var
        .db()
        .select({ settings: apps.settings })
        .from(apps)
        .where(eq(apps.status, "active"));
      appOrigins = {
        loadedAt: now,
        origins: new Set(rows.flatMap((row) => row.settings.cors_origins ?? [])),
      };
    }
    return appOrigins.origins;
  }

  return cors({
    origin: configured.includes("*")
      ? "*"
      : async (origin, c: Context<AppEnv>) =>
          configured.includes(origin) || (await fromApps(c)).has(origin) ? origin : null,
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
