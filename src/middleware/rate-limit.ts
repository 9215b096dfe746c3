import type { Context, MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "../http/app-env";
import { clientAddressOf } from "../http/client-address";
import { ApiError } from "../lib/errors";
import type { Ports, RateLimitResult } from "../ports";
import { failOpen } from "../services/fail-open-limiter";
import { createRateBudgets } from "../services/rate-budgets";
import { authenticate, authorizationOf } from "./auth";
import { deviceOf } from "./ingest-auth";

const WINDOW_MS = 60_000;

/**
 * The rate-limit classes a route may declare; a route that declares none is in the default
 * class (per authenticated caller, or per IP).
 * - `sign-in`: where a person signs in to the app of the route's `:app_name` (token endpoints,
 *   OAuth page, platform login and callback), per client IP and app, the app's token budget;
 * - `invite-accept`: accepting an invite, per client IP, the token budget;
 * - `authorize`: token checks for other services, per client IP;
 * - `unlimited`: health and the API's documentation.
 */
export type RateLimitClass = "sign-in" | "invite-accept" | "authorize" | "unlimited";

const declaredClass = Symbol("rate-limit class");
type Declaration = MiddlewareHandler<AppEnv> & { [declaredClass]?: RateLimitClass };

/**
 * Declares the rate-limit class of a route, in its `middleware` list as `guard()` is: the global
 * {@link rateLimiting} middleware reads it from the matched route and charges before anything
 * of the route runs; the declaration itself does nothing.
 *
 * @example
 * createRoute({ method: "post", path: "/apps/{app_name}/tokens", middleware: [rateLimit("sign-in")], … });
 */
export function rateLimit(kind: RateLimitClass): MiddlewareHandler<AppEnv> {
  const declaration: Declaration = (_c, next) => next();
  declaration[declaredClass] = kind;
  return declaration;
}

/** The class the matched route declares, and the path it was declared on. */
function declarationOf(c: Context<AppEnv>) {
  for (const route of matchedRoutes(c)) {
    const kind = (route.handler as Declaration)[declaredClass];
    if (kind) return { kind, path: route.path };
  }
  return undefined;
}

/** The value of the `:name` segment of a route path in the request's path, as sent. */
function segmentOf(template: string, path: string, name: string) {
  const index = template.split("/").indexOf(`:${name}`);
  return index < 0 ? undefined : path.split("/")[index];
}

interface Bucket {
  key: string;
  limit: number;
}

/**
 * Rate limits by class (docs/abuse.md): the admin key 100/min, sign-in (token endpoints, OAuth
 * page, platform login and callback, invite acceptance) 300/min per client IP and app,
 * `/v1/authorize` 1000/min per IP, everything else 100/min per authenticated caller (token, API
 * key, device secret), or per IP. A route's class other than the default is declared on the
 * route with {@link rateLimit}. A credential counts only once it has authenticated: a request
 * whose credential is missing or rejected is charged to its IP, so junk credentials buy no
 * budget of their own. An app may set its own token and default budgets in its settings. Every
 * limited response carries `X-RateLimit-Limit/Remaining/Reset`; a refusal is 429 with
 * `Retry-After`. A request that carries several operations (a GraphQL batch) charges the rest
 * through `c.get("chargeRateLimit")`.
 */
export function rateLimiting(ports: Ports) {
  const { config } = ports;
  const limiter = failOpen(ports.limiter, ports.logger);
  const budgets = createRateBudgets({ clock: ports.clock });

  /** The request's bucket, at once for the classes that need no lookup; none if unlimited. */
  function bucketOf(c: Context<AppEnv>): Bucket | undefined | Promise<Bucket | undefined> {
    if (c.req.method === "OPTIONS") return undefined;
    const declared = declarationOf(c);
    if (declared?.kind === "unlimited") return undefined;
    const ip = clientAddressOf(c) ?? "unknown";
    if (declared?.kind === "sign-in") return signInBucketOf(c, declared.path, ip);
    if (declared?.kind === "invite-accept")
      return { key: `token:invites:${ip}`, limit: config.RATE_LIMIT_TOKEN_PER_MINUTE };
    if (declared?.kind === "authorize") {
      return { key: `authorize:${ip}`, limit: config.RATE_LIMIT_AUTHORIZE_PER_MINUTE };
    }
    return callerOrAddressBucketOf(c, ip);
  }

  async function signInBucketOf(c: Context<AppEnv>, template: string, ip: string) {
    const app = decodeURIComponent(segmentOf(template, c.req.path, "app_name") ?? "").toLowerCase();
    const limit = await budgets.signIn(c.get("services"), app);
    return { key: `token:${app}:${ip}`, limit };
  }

  async function callerOrAddressBucketOf(c: Context<AppEnv>, ip: string) {
    return (
      (await callerBucketOf(c)) ?? {
        key: `ip:${ip}`,
        limit: config.RATE_LIMIT_DEFAULT_PER_MINUTE,
      }
    );
  }

  /** The bucket of the request's credential once it has authenticated; none if it did not. */
  async function callerBucketOf(c: Context<AppEnv>): Promise<Bucket | undefined> {
    const deviceLookup = deviceOf(c);
    if (deviceLookup) {
      const device = await deviceLookup;
      if (!device) return undefined;
      return {
        key: `device:${device.id}`,
        limit: await budgets.credential(c.get("services"), device.appId),
      };
    }
    if (!authorizationOf(c) && !c.req.header("x-api-key")) return undefined;
    // The route's own authentication reuses this subject and answers a rejected credential.
    const subject = await authenticate(c).catch(() => undefined);
    if (!subject) return undefined;
    if (subject.kind === "admin") {
      return { key: "admin", limit: config.RATE_LIMIT_ADMIN_PER_MINUTE };
    }
    // The credential by its id (a token's `jti`, an API key's id): no hash of it per request.
    const credential =
      subject.kind === "api_key" ? `key:${subject.keyId}` : `jwt:${subject.claims.jti}`;
    return {
      key: `cred:${credential}`,
      limit: await budgets.credential(c.get("services"), subject.appId),
    };
  }

  /** Charges `count` requests to the bucket, answering with the last result's headers or 429. */
  async function charge(c: Context<AppEnv>, bucket: Bucket, count: number) {
    const key = `rl:${bucket.key}`;
    const rule = { limit: bucket.limit, windowMs: WINDOW_MS };
    let result: RateLimitResult | undefined;
    for (let i = 0; i < count && result?.success !== false; i++) {
      result = await limiter.limit(key, rule);
    }
    if (result) answerWith(c, result, ports.clock.now().getTime());
  }

  return createMiddleware<AppEnv>(async function rateLimitMiddleware(c, next) {
    if (!config.RATE_LIMIT_ENABLED) return next();
    const found = bucketOf(c);
    const bucket = found instanceof Promise ? await found : found;
    if (!bucket) return next();
    // Inline, not a named constant: tsx (esbuild's keepNames) names every named closure with
    // a call per request.
    c.set("chargeRateLimit", (count) => charge(c, bucket, count));
    await charge(c, bucket, 1);
    return next();
  });
}

/** The limit headers of a limited response, and 429 with `Retry-After` when it is refused. */
function answerWith(c: Context<AppEnv>, result: RateLimitResult, now: number) {
  c.header("X-RateLimit-Limit", String(result.limit));
  c.header("X-RateLimit-Remaining", String(result.remaining));
  c.header("X-RateLimit-Reset", String(Math.ceil(result.reset / 1000)));
  if (result.success) return;
  const retryAfter = Math.max(1, Math.ceil((result.reset - now) / 1000));
  throw new ApiError("rate_limited", `Rate limit of ${result.limit} requests per minute exceeded`, {
    headers: { "Retry-After": String(retryAfter) },
  });
}
