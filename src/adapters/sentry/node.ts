import * as Sentry from "@sentry/node";
import type { Config } from "../../config";
import type { ErrorReporter } from "../../ports/error-reporter";
import { captureContextOf, sentryOptions } from "./scrub";

/** The Node reporter, with what shutdown and tests need: waiting for the events in flight. */
export interface SentryNodeReporter extends ErrorReporter {
  /** Resolves once queued events are sent (true) or `timeoutMs` has passed (false). */
  flush(timeoutMs?: number): Promise<boolean>;
}

/**
 * Server errors to Sentry on Node (`SENTRY_DSN` set). Initialises @sentry/node once per
 * process, with its default integrations: the process's uncaught exceptions and unhandled
 * rejections are reported by them, incoming requests (node:http) get their own scope. The
 * scrubbing of `./scrub.ts` applies to everything sent; events tagged below 500 are dropped.
 *
 * @example
 * const errors = createSentryNodeReporter(config);
 * errors.capture(error, { request, requestId, status: 500 });
 * await errors.flush(2000);
 */
export function createSentryNodeReporter(config: Config): SentryNodeReporter {
  if (!Sentry.isInitialized()) Sentry.init(sentryOptions(config));
  return {
    capture(error, context) {
      try {
        Sentry.captureException(error, captureContextOf(context));
      } catch {
        // Reporting must never turn into a second failure.
      }
    },
    flush: (timeoutMs = 2000) => Sentry.flush(timeoutMs),
  };
}
