import { bodyLimit as streamingBodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../http/app-env";
import { ApiError } from "../lib/errors";

const bodiless = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Refuses a request body larger than `maxBytes` with 413 `payload_too_large`. The request's
 * headers decide wherever they can: GET, HEAD and OPTIONS carry no body, a `Content-Length`
 * is compared before anything is read (the runtime's HTTP parser holds the body to it). Only a
 * body of unknown length (chunked) is counted as it streams, by `hono/body-limit`. Reading
 * `c.req.raw.body` on `@hono/node-server` turns its light request into a full `Request` whose
 * body then goes through web streams; left alone, `c.req.json()`/`text()` read the socket
 * directly.
 */
export function bodyLimit(maxBytes: number) {
  const refuse = (): never => {
    throw new ApiError("payload_too_large", `The request body is larger than ${maxBytes} bytes`);
  };
  const streaming = streamingBodyLimit({ maxSize: maxBytes, onError: refuse });

  return createMiddleware<AppEnv>(async function bodyLimitMiddleware(c, next) {
    if (bodiless.has(c.req.method)) return next();
    const headers = c.req.raw.headers;
    const length = headers.get("content-length");
    if (length !== null && /^\d+$/.test(length) && !headers.has("transfer-encoding")) {
      return Number(length) > maxBytes ? refuse() : next();
    }
    return streaming(c, next);
  });
}
