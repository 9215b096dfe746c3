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
  /** The password was right; the app asks for a verified email before it issues tokens. */
  email_not_verified: 403,
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
    .filter(([code]) => !["invalid_client", "mfa_required", "email_not_verified"].includes(code))
    .map(([code, status]) => [status, code as ErrorCode]),
);

/** The code for a status raised by a library (hono's `HTTPException`), never `internal_error` for a 4xx. */
export function codeForStatus(status: number): ErrorCode {
  return codeByStatus.get(status) ?? (status >= 500 ? "internal_error" : "bad_request");
}
