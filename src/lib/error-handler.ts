import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "../app-env";
import { ApiError, codeForStatus, type ErrorBody } from "./errors";

function errorResponse(c: Context<AppEnv>, error: ApiError) {
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message,
      ...(error.options.details ? { details: error.options.details } : {}),
      ...(error.options.mfaToken ? { mfa_token: error.options.mfaToken } : {}),
      request_id: c.var.requestId ?? "",
    },
  };
  for (const [name, value] of Object.entries(error.options.headers ?? {})) c.header(name, value);
  return c.json(body, error.status);
}

/**
 * The single place an exception becomes a response. `ApiError` keeps its code; hono's own
 * `HTTPException`s (malformed JSON, 415 from the validator) get the code of their status;
 * anything else is a 500 whose details go to the log, never to the client.
 */
export const handleError: ErrorHandler<AppEnv> = (error, c) => {
  if (error instanceof ApiError) {
    if (error.status >= 500) {
      (c.var.logger ?? c.var.ports?.logger)?.error(error.message, { error, path: c.req.path });
      report(c, error.options.cause ?? error, error.status);
    }
    return errorResponse(c, error);
  }
  if (error instanceof HTTPException && error.status < 500) {
    return errorResponse(c, new ApiError(codeForStatus(error.status), error.message));
  }
  const logger = c.var.logger ?? c.var.ports?.logger;
  logger?.error("unhandled error", { error, method: c.req.method, path: c.req.path });
  report(c, error, 500);
  return errorResponse(c, new ApiError("internal_error", "Internal server error"));
};

function report(c: Context<AppEnv>, error: unknown, status: number) {
  c.var.ports?.errors.capture(error, { request: c.req.raw, requestId: c.var.requestId, status });
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
