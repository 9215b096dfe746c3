import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError, codeForStatus } from "../lib/errors";
import type { AppEnv } from "./app-env";
import type { ErrorBody } from "./openapi";

function errorResponse(c: Context<AppEnv>, error: ApiError) {
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.options.details ? { details: error.options.details } : {}),
      ...(error.options.mfaToken ? { mfa_token: error.options.mfaToken } : {}),
      request_id: c.get("requestId") ?? "",
    },
  };
  for (const [name, value] of Object.entries(error.options.headers ?? {})) c.header(name, value);
  return c.json(body, error.status);
}

/**
 * The single place an exception becomes a response. `ApiError` keeps its code; hono's own
 * `HTTPException`s (malformed JSON, 415 from the validator) get the code of their status; a
 * dependency that cannot be reached (the database, Redis) is a 503 with `Retry-After`; anything
 * else is a 500 whose details go to the log, never to the client.
 */
export const handleError: ErrorHandler<AppEnv> = (thrown, c) => {
  const error = isUnreachable(thrown) ? unavailable(thrown) : thrown;
  if (error instanceof ApiError) {
    if (error.options.external) c.set("externalFailure", true);
    else if (error.status >= 500) {
      (c.get("logger") ?? c.get("ports")?.logger)?.error(error.message, {
        error,
        path: c.req.path,
      });
      report(c, error.options.cause ?? error, error.status);
    }
    return errorResponse(c, error);
  }
  if (error instanceof HTTPException && error.status < 500) {
    return errorResponse(c, new ApiError(codeForStatus(error.status), error.message));
  }
  const logger = c.get("logger") ?? c.get("ports")?.logger;
  logger?.error("unhandled error", { error, method: c.req.method, path: c.req.path });
  report(c, error, 500);
  return errorResponse(c, new ApiError("internal_error", "Internal server error"));
};

const unavailable = (cause: unknown) =>
  new ApiError("service_unavailable", "A service this request needs is unavailable; try again", {
    headers: { "Retry-After": "5" },
    cause,
  });

/** Node's codes for a peer that cannot be reached, and SQLSTATEs of a server that cannot serve. */
const unreachableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "57P01", // admin_shutdown: the server is restarting
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: the server is starting up
  "53300", // too_many_connections
]);
/**
 * node-postgres's own connection failures (Neon's driver shares them), which carry no code, and
 * those of Neon's SQL over HTTP: its request failed or timed out, or its endpoint answered 5xx.
 */
const lostConnection =
  /^(Connection terminated|timeout expired|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|Error connecting to database|Server error \(HTTP status 5)/;

/**
 * Whether a request failed for want of a dependency, not because of what it asked: a connection
 * refused, cut or timed out, on the way to the database (drizzle wraps the driver's error as
 * `cause`; a transaction's connection error comes unwrapped) or to Upstash (fetch's `TypeError`
 * has the socket's error as `cause`; its timeout is a `TimeoutError`). Class 08 SQLSTATEs are
 * connection exceptions.
 */
function isUnreachable(error: unknown): boolean {
  for (let depth = 0; error instanceof Error && depth < 4; depth++, error = error.cause) {
    if (error.name === "TimeoutError") return true;
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string" && (unreachableCodes.has(code) || code.startsWith("08"))) {
      return true;
    }
    if (lostConnection.test(error.message)) return true;
  }
  return false;
}

function report(c: Context<AppEnv>, error: unknown, status: number) {
  c.get("ports")?.errors.capture(error, {
    request: c.req.raw,
    requestId: c.get("requestId"),
    status,
  });
}

/** 404 for unknown paths, 405 with `Allow` for known paths asked with another method. */
export function notFoundHandler(
  allowedMethods: (path: string) => string[],
): NotFoundHandler<AppEnv> {
  return (c) => {
    const allowed = allowedMethods(c.req.path);
    if (allowed.length > 0) {
      return errorResponse(
        c,
        new ApiError("method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}`, {
          headers: { Allow: allowed.join(", ") },
        }),
      );
    }
    return errorResponse(
      c,
      new ApiError("not_found", `No route for ${c.req.method} ${c.req.path}`),
    );
  };
}
