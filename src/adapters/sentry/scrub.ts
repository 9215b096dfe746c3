import type { Breadcrumb, DataCollection, ErrorEvent, Event, StreamedSpanJSON } from "@sentry/core";
import type { Config } from "../../config";
import { FILTERED, isSecretQueryName, redactSecrets, SECRET_QUERY_WORDS } from "../../lib/redact";
import type { ErrorContext } from "../../ports/error-reporter";

/**
 * What Heimdall lets reach Sentry, for both SDKs (@sentry/node, @sentry/cloudflare): no
 * runtime here, only the options and the scrubbing they share. The policy: never a credential
 * header (`Authorization`, `Cookie`, `X-API-Key`), never the value of a query parameter named
 * like key/token/ticket/access_token/password/code/secret, never a secret Heimdall issued (by its
 * prefix, or a JWT) in a path or message, never a request body, and the user's IP address
 * only with `SENTRY_SEND_DEFAULT_PII=true`. Events answered below 500 are dropped.
 */
export interface ScrubPolicy {
  /** `SENTRY_SEND_DEFAULT_PII`: the user's IP address (and its forwarding headers) may go. */
  sendDefaultPii: boolean;
}

/** Headers that carry credentials: removed from every event, breadcrumb and span. */
const SECRET_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
]);

/** Headers that carry the client's address: removed unless PII is allowed. */
const IP_HEADERS = new Set([
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "cf-pseudo-ipv4",
  "true-client-ip",
  "x-client-ip",
  "x-forwarded-for",
  "x-real-ip",
  "x-cluster-client-ip",
  "x-forwarded",
  "forwarded-for",
  "forwarded",
  "fly-client-ip",
  "fastly-client-ip",
  "x-vercel-forwarded-for",
]);

/** Span attributes holding the client's address (http.server spans). */
const IP_ATTRIBUTES = new Set(["client.address", "user.ip_address", "network.peer.address"]);

/**
 * The bound values Drizzle appends to a failed query's message (`Failed query: …\nparams: …`):
 * emails, hashes, ids. Up to the end of the line, in plain text or JSON-encoded (a log line).
 */
const QUERY_PARAMS = /(\nparams: )[^\n]*/g;
const ENCODED_QUERY_PARAMS = /(\\nparams: )(?:\\[^n]|[^"\\])*/g;

/**
 * Replaces the values of secret query parameters wherever `name=value` pairs appear (a full URL,
 * a bare query string, a log line), every secret Heimdall issues (`redactSecrets`), and the
 * parameters of a failed SQL query.
 *
 * @example
 * scrubText("/v1/live?ticket=abc&channel=x") // "/v1/live?ticket=[Filtered]&channel=x"
 */
export function scrubText(text: string): string {
  return redactSecrets(text)
    .replace(QUERY_PARAMS, `$1${FILTERED}`)
    .replace(ENCODED_QUERY_PARAMS, `$1${FILTERED}`);
}

/** Strings (also in arrays and `{ value }` attributes) through `scrubText`. */
function scrubValue(value: unknown): unknown {
  if (typeof value === "string") return scrubText(value);
  if (Array.isArray(value)) return value.map(scrubValue);
  if (isObject(value) && typeof value.value === "string") {
    return { ...value, value: scrubText(value.value) };
  }
  return value;
}

const isSecretHeader = (name: string, policy: ScrubPolicy) => {
  const lower = name.toLowerCase();
  return SECRET_HEADERS.has(lower) || (!policy.sendDefaultPii && IP_HEADERS.has(lower));
};

/** Headers without credentials (and without the client's address unless PII is allowed). */
export function scrubHeaders<T>(headers: Record<string, T>, policy: ScrubPolicy) {
  const kept: Record<string, T> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!isSecretHeader(name, policy)) kept[name] = value;
  }
  return kept;
}

type QueryParams = NonNullable<NonNullable<Event["request"]>["query_string"]>;

function scrubQuery(query: QueryParams): QueryParams {
  if (typeof query === "string") return scrubText(query);
  if (Array.isArray(query)) {
    return query.map(([name, value]) => [name, isSecretQueryName(name) ? FILTERED : value]);
  }
  return Object.fromEntries(
    Object.entries(query).map(([name, value]) => [
      name,
      isSecretQueryName(name) ? FILTERED : value,
    ]),
  );
}

/** Span attributes / trace data: no secret headers, bodies, or (without PII) addresses. */
function scrubAttributes(attributes: Record<string, unknown>, policy: ScrubPolicy) {
  for (const [key, value] of Object.entries(attributes)) {
    const header = /^http\.(?:request|response)\.header\.(.+)$/.exec(key)?.[1];
    if (
      (header !== undefined && isSecretHeader(header.replace(/_/g, "-"), policy)) ||
      /\.body(?:\.data)?$/.test(key) ||
      (!policy.sendDefaultPii && IP_ATTRIBUTES.has(key))
    ) {
      delete attributes[key];
    } else {
      attributes[key] = scrubValue(value);
    }
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null;

/** One breadcrumb under the policy (console lines, outgoing fetch/http URLs). */
export function scrubBreadcrumb(breadcrumb: Breadcrumb, policy: ScrubPolicy): Breadcrumb {
  if (breadcrumb.message) breadcrumb.message = scrubText(breadcrumb.message);
  if (breadcrumb.data) scrubAttributes(breadcrumb.data, policy);
  return breadcrumb;
}

/** An event under the policy, in place: exception messages, request, user, breadcrumbs, trace. */
export function scrubEvent<T extends Event>(event: T, policy: ScrubPolicy): T {
  for (const exception of event.exception?.values ?? []) {
    if (exception.value) exception.value = scrubText(exception.value);
  }
  if (event.message) event.message = scrubText(event.message);
  const request = event.request;
  if (request) {
    delete request.data;
    delete request.cookies;
    if (request.headers) request.headers = scrubHeaders(request.headers, policy);
    if (request.url) request.url = scrubText(request.url);
    if (request.query_string) request.query_string = scrubQuery(request.query_string);
    if (request.env && !policy.sendDefaultPii) delete request.env.REMOTE_ADDR;
  }
  if (event.user && !policy.sendDefaultPii) {
    delete event.user.ip_address;
    if (Object.keys(event.user).length === 0) delete event.user;
  }
  if (event.breadcrumbs) {
    event.breadcrumbs = event.breadcrumbs.map((crumb) => scrubBreadcrumb(crumb, policy));
  }
  const trace = event.contexts?.trace;
  if (trace?.data) scrubAttributes(trace.data, policy);
  for (const span of event.spans ?? []) if (span.data) scrubAttributes(span.data, policy);
  return event;
}

/**
 * Heimdall reports server errors only: an event tagged with the status it answered is dropped
 * below 500 (the error handler never captures those; this holds whatever else captures).
 */
export function isServerError(event: Event): boolean {
  const status = Number(event.tags?.["http.status_code"] ?? event.contexts?.response?.status_code);
  return !Number.isFinite(status) || status >= 500;
}

/** What each capture carries: the request id tag, method and path (never the query), status. */
export function captureContextOf({ request, requestId, status }: ErrorContext) {
  let path = "";
  try {
    path = new URL(request.url).pathname;
  } catch {}
  return {
    tags: {
      ...(requestId ? { request_id: requestId } : {}),
      "http.status_code": String(status),
    },
    contexts: {
      request: { method: request.method, path: redactSecrets(path) },
      response: { status_code: status },
    },
  };
}

/** What the SDKs collect by themselves, told in their `dataCollection` terms. */
function dataCollectionFor(policy: ScrubPolicy): DataCollection {
  return {
    userInfo: policy.sendDefaultPii,
    cookies: false,
    httpHeaders: {
      request: { deny: [...SECRET_HEADERS, ...(policy.sendDefaultPii ? [] : IP_HEADERS)] },
      response: false,
    },
    httpBodies: [],
    urlQueryParams: { deny: [...SECRET_QUERY_WORDS] },
    graphQL: { document: false, variables: false },
    genAI: { inputs: false, outputs: false },
    databaseQueryData: false,
    queues: false,
    stackFrameVariables: false,
  };
}

/**
 * The options both SDKs are initialised with, from the parsed settings. A traces sample rate of
 * 0 leaves tracing off altogether (`undefined`), so an incoming `sentry-trace` header cannot
 * switch it on.
 */
export function sentryOptions(config: Config) {
  const policy: ScrubPolicy = { sendDefaultPii: config.SENTRY_SEND_DEFAULT_PII };
  return {
    dsn: config.SENTRY_DSN,
    environment: config.SENTRY_ENVIRONMENT ?? config.APP_ENV,
    sampleRate: config.SENTRY_SAMPLE_RATE,
    tracesSampleRate:
      config.SENTRY_TRACES_SAMPLE_RATE > 0 ? config.SENTRY_TRACES_SAMPLE_RATE : undefined,
    debug: config.SENTRY_DEBUG,
    // Spans are streamed (and scrubbed by `beforeSendSpan`), not sent as transactions.
    traceLifecycle: "stream" as const,
    dataCollection: dataCollectionFor(policy),
    beforeSend: (event: ErrorEvent): ErrorEvent | null =>
      isServerError(event) ? scrubEvent(event, policy) : null,
    beforeSendSpan: (span: StreamedSpanJSON): StreamedSpanJSON => {
      scrubAttributes(span.attributes, policy);
      return span;
    },
    beforeBreadcrumb: (breadcrumb: Breadcrumb): Breadcrumb => scrubBreadcrumb(breadcrumb, policy),
  };
}
