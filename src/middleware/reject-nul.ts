import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { ApiError } from "../lib/errors";

/**
 * Postgres cannot store NUL in text, so a NUL anywhere in the path, the query or a JSON or form
 * body is
 * refused up front with a 400, instead of failing deep in a query.
 */
export function rejectNul() {
  return createMiddleware<AppEnv>(async function rejectNulMiddleware(c, next) {
    const url = c.req.url;
    if (url.includes("%00") || url.includes("\0")) {
      throw new ApiError("bad_request", "NUL characters are not accepted in URLs");
    }
    const type = c.req.header("content-type") ?? "";
    const json = type.includes("json");
    if (json || type.includes("x-www-form-urlencoded")) {
      const text = await c.req.text();
      const nul = json ? text.includes("\\u0000") : /%00/.test(text);
      if (nul || text.includes("\0")) {
        throw new ApiError("bad_request", "NUL characters are not accepted in request bodies");
      }
    }
    return next();
  });
}
