/**
 * Where server errors go beyond the log (Sentry when `SENTRY_DSN` is set): 5xx answers and
 * unhandled exceptions only, never a client's 4xx.
 */
export interface ErrorReporter {
  /** Reports one server error; never throws, never delays the response. */
  capture(error: unknown, context: ErrorContext): void;
}

export interface ErrorContext {
  request: Request;
  requestId?: string | undefined;
  /** The status answered (500 for an unhandled exception). */
  status: number;
}

/** No reporting: the default without `SENTRY_DSN`. */
export const noErrorReporter: ErrorReporter = { capture() {} };
