import { z } from "@hono/zod-openapi";

/** Every error code Heimdall answers with, and its HTTP status. One table, used everywhere. */
export const errorStatus = {
  bad_request: 400,
  validation_error: 400,
  // OAuth 2.0 (RFC 6749 §5.2) codes, used by the token endpoints in the same envelope.
  invalid_request: 400,
  invalid_grant: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_client: 401,
  unauthorized: 401,
  /** The password was right; a second factor must follow (`grant_type=mfa_otp`). */
  mfa_required: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  internal_error: 500,
  service_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof errorStatus;
export type ErrorStatus = (typeof errorStatus)[ErrorCode];

export interface ErrorDetail {
  field: string;
  reason: string;
}

/**
 * The one error class. Throw it anywhere; `onError` turns it into
 * `{error:{code, message, details?, request_id}}` with the status of its code.
 *
 * @example
 * throw new ApiError("not_found", `No app named ${name}`);
 */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: ErrorStatus;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: {
      details?: ErrorDetail[];
      /** The 2FA challenge of an `mfa_required` answer, sent beside code and message. */
      mfaToken?: string;
      headers?: Record<string, string>;
      /** The underlying failure, for the log; never sent to the client. */
      cause?: unknown;
      /**
       * A 5xx caused by something outside Heimdall (a tenant's identity provider), logged as a
       * warning where it happened: not logged at error level again, not reported to Sentry.
       */
      external?: boolean;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = errorStatus[code];
  }
}

const codeByStatus = new Map<number, ErrorCode>(
  Object.entries(errorStatus)
    .filter(([code]) => errorStatus[code as ErrorCode] !== 400 || code === "bad_request")
    .filter(([code]) => code !== "invalid_client" && code !== "mfa_required")
    .map(([code, status]) => [status, code as ErrorCode]),
);

/** The code for a status raised by a library (hono's `HTTPException`), never `internal_error` for a 4xx. */
export function codeForStatus(status: number): ErrorCode {
  return codeByStatus.get(status) ?? (status >= 500 ? "internal_error" : "bad_request");
}

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(errorStatus) as [ErrorCode, ...ErrorCode[]]).openapi({
        example: "not_found",
      }),
      message: z.string().openapi({ example: "No route for GET /v1/nothing" }),
      details: z
        .array(z.object({ field: z.string(), reason: z.string() }))
        .optional()
        .openapi({ example: [{ field: "email", reason: "Invalid email address" }] }),
      mfa_token: z.string().optional().openapi({
        description: "With `mfa_required`: send it back with `grant_type=mfa_otp` and the code",
      }),
      request_id: z.string().openapi({ example: "0f9a3c1e-5b7d-4e7a-9c4b-2d1f8e6a7b30" }),
    }),
  })
  .openapi("Error");

export type ErrorBody = z.infer<typeof ErrorSchema>;

const errorDescriptions: Record<number, string> = {
  400: "The request is malformed or fails validation",
  401: "Missing or invalid credentials",
  403: "The credentials lack a required permission",
  404: "No such resource",
  409: "The request conflicts with existing state",
  413: "The body is larger than the server accepts",
  415: "The body's content type is not accepted",
  422: "The request is well-formed but cannot be processed",
  429: "Too many requests; see Retry-After",
  500: "Unexpected server error",
  503: "A dependency is unavailable",
};

/**
 * OpenAPI `responses` entries for the given error statuses, to spread into a `createRoute`.
 *
 * @example
 * responses: { 200: jsonContent(AppSchema, "The app"), ...errorResponses(401, 404) }
 */
export function errorResponses<S extends number>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: errorDescriptions[status] ?? "Error",
        content: { "application/json": { schema: ErrorSchema } },
      },
    ]),
  ) as Record<
    S,
    { description: string; content: { "application/json": { schema: typeof ErrorSchema } } }
  >;
}
