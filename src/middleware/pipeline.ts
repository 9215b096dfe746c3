import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../http/app-env";
import { requestServicesOf } from "../http/service-context";
import type { Ports } from "../ports";
import type { Services } from "../services/context";
import { bodyLimit } from "./body-limit";
import { corsPolicy } from "./cors";
import { ipBanCheck } from "./ip-bans";
import { rejectBadPath } from "./reject-bad-path";
import { rejectNul } from "./reject-nul";
import { openRequestContext } from "./request-context";
import { logRequest } from "./request-logger";
import { completeSecureHeaders, prepareSecureHeaders } from "./secure-headers";

/**
 * What every request goes through before its route, as few middlewares as the order allows:
 * each `async` middleware is a frame, a closure and a promise per request, and eight of them
 * were a quarter of a light route's CPU. The rules live in their own modules; these three put
 * them in order around `rateLimiting`, which must charge a request after its path and address
 * are checked and before its body is read: {@link requestSetup} → {@link requestGate} →
 * `rateLimiting` → {@link bodyChecks}.
 */

/** An echoed `X-Request-Id` is kept only if it is short and plain (it goes into logs). */
const SAFE_REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * Request id, request context (ports, logger, lazy database, services), security headers and
 * the request's log line. It throws nothing itself, so whatever the rest of the request does,
 * its answer is logged and its database session released.
 */
export function requestSetup(ports: Ports, services: Services) {
  const requestServices = requestServicesOf(services);
  return createMiddleware<AppEnv>(async function requestSetupMiddleware(c, next) {
    const started = performance.now();
    const sent = c.req.header("x-request-id");
    const requestId = sent && SAFE_REQUEST_ID.test(sent) ? sent : crypto.randomUUID();
    c.set("requestId", requestId);
    c.header("X-Request-Id", requestId);
    prepareSecureHeaders(c);
    const release = openRequestContext(c, ports, requestServices, requestId);
    try {
      await next();
    } finally {
      release();
    }
    completeSecureHeaders(c);
    logRequest(c, started);
  });
}

/** Malformed paths, banned addresses, then CORS around the rest (preflights answered here). */
export function requestGate(ports: Ports, services: Services) {
  const rejectBannedAddress = ipBanCheck(services);
  const cors = corsPolicy(ports);
  return createMiddleware<AppEnv>(async function requestGateMiddleware(c, next) {
    rejectBadPath(c);
    await rejectBannedAddress(c);
    return cors.around(c, next);
  });
}

/** The body's size (`MAX_BODY_BYTES`), then NUL characters and lone surrogates in it. */
export function bodyChecks(maxBytes: number) {
  const limit = bodyLimit(maxBytes);
  return createMiddleware<AppEnv>(function bodyChecksMiddleware(c, next) {
    return limit(c, () => {
      const reading = rejectNul(c);
      return reading ? reading.then(next) : next();
    });
  });
}
