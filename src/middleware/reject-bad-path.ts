import type { Context } from "hono";
import type { AppEnv } from "../http/app-env";
import { ApiError } from "../lib/errors";

/**
 * A path whose percent-encoding does not decode (`%ZZ`, `%C3%28`) is refused with a 400 before
 * anything reads it: Hono keeps such a segment as it came, and every later decode of it (the rate
 * limiter's, a handler's) would otherwise have to guard against `URIError` on its own.
 */
export function rejectBadPath(c: Context<AppEnv>) {
  // Without a `%` there is no encoding to get wrong: most requests skip parsing their URL.
  if (!c.req.url.includes("%")) return;
  try {
    decodeURIComponent(new URL(c.req.url).pathname);
  } catch {
    throw new ApiError("bad_request", "The path has malformed percent-encoding");
  }
}
