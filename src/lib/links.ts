import type { Context } from "hono";
import type { AppEnv } from "../app-env";

/** Absolute URL for a path: `PUBLIC_URL` when set (behind proxies), else the request's origin. */
export function absoluteUrl(c: Context<AppEnv>, path: string): string {
  const base = c.var.ports.config.PUBLIC_URL ?? new URL(c.req.url).origin;
  return new URL(path, base.endsWith("/") ? base : `${base}/`).toString();
}
