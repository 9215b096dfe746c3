import { captureException, setAsyncLocalStorageAsyncContextStrategy } from "@sentry/cloudflare";
import { wrapRequestHandler } from "@sentry/cloudflare/request";
import { parseConfig } from "../../config";
import type { ErrorReporter } from "../../ports/error-reporter";
import { captureContextOf, sentryOptions } from "./scrub";

/**
 * Server errors to Sentry on Workers: the event goes to the client `withSentryWhenConfigured`
 * set on the invocation's scope, which sends it from the invocation's `waitUntil` once the
 * response is out. Outside such an invocation (no client) it is a no-op.
 */
export const sentryWorkerReporter: ErrorReporter = {
  capture(error, context) {
    try {
      captureException(error, captureContextOf(context));
    } catch {
      // Reporting must never turn into a second failure.
    }
  },
};

type FetchHandler<Env> = ExportedHandlerFetchHandler<Env>;

/**
 * The Worker's exported handler with @sentry/cloudflare's request wrapper around its `fetch`, for
 * the bindings that set `SENTRY_DSN`; for the others `fetch` is called as is, with no Sentry
 * client, scope or span. The choice is made once per bindings object (as the Worker builds its
 * app once per bindings object), and the wrapped `fetch` is given those same bindings, not
 * the SDK's per-request proxy of them, so the Worker's per-isolate caches keep working. The
 * other handlers (`scheduled`) are passed through.
 *
 * @example
 * export default withSentryWhenConfigured({ fetch, scheduled } satisfies ExportedHandler<Env>);
 */
export function withSentryWhenConfigured<Env extends object, H extends ExportedHandler<Env>>(
  handler: H & { fetch: FetchHandler<Env> },
): H {
  const fetchers = new WeakMap<Env, FetchHandler<Env>>();
  const fetcherFor = (env: Env): FetchHandler<Env> => {
    let fetcher = fetchers.get(env);
    if (!fetcher) {
      let dsn: string | undefined;
      let options: ReturnType<typeof sentryOptions>;
      try {
        options = sentryOptions(parseConfig(env as Record<string, unknown>));
        dsn = options.dsn;
      } catch {
        // Misconfigured: the handler answers that itself; decide again on the next request.
        return (request, env, ctx) => handler.fetch(request, env, ctx);
      }
      fetcher = dsn
        ? sentryFetcher(handler, env, options)
        : (request, env, ctx) => handler.fetch(request, env, ctx);
      fetchers.set(env, fetcher);
    }
    return fetcher;
  };
  return { ...handler, fetch: (request, env, ctx) => fetcherFor(env)(request, env, ctx) };
}

/**
 * `fetch` inside @sentry/cloudflare's request wrapper (`@sentry/cloudflare/request`): the client
 * on the invocation's own isolation scope, the request attached to its events, the http.server
 * span when tracing is on, the flush from `waitUntil`. `withSentry` does the same and also
 * instruments the handlers and bindings Heimdall does not report from (queues, e-mail, tail, D1,
 * R2, Durable Object storage, the OpenTelemetry API): some 15 KiB gzip more in the Worker.
 */
function sentryFetcher<Env>(
  handler: { fetch: FetchHandler<Env> },
  env: Env,
  options: ReturnType<typeof sentryOptions>,
): FetchHandler<Env> {
  // Each request's scope follows its own async work, as withSentry sets up.
  setAsyncLocalStorageAsyncContextStrategy();
  const withRelease = { ...options, release: releaseOf(env) };
  return (request, _env, ctx) =>
    wrapRequestHandler({ options: withRelease, request, context: ctx }, () =>
      handler.fetch(request, env, ctx),
    );
}

/** The release events carry, named as `withSentry` names it: `SENTRY_RELEASE`, else the version binding's id. */
function releaseOf(env: unknown): string | undefined {
  const vars = env as { SENTRY_RELEASE?: unknown; CF_VERSION_METADATA?: { id?: unknown } };
  if (typeof vars.SENTRY_RELEASE === "string") return vars.SENTRY_RELEASE;
  const id = vars.CF_VERSION_METADATA?.id;
  return typeof id === "string" ? id : undefined;
}
