import { eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { apps } from "../db/schema";
import type { AppSettings } from "../db/schema/settings";
import type { AppEnv } from "../http/app-env";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { createTtlCache } from "../lib/ttl-cache";
import type { Ports, RateLimitResult } from "../ports";
import { failOpen } from "../services/fail-open-limiter";
import { authenticate, credentialOf } from "./auth";
import { deviceSecretOf } from "./ingest-auth";

const WINDOW_MS = 60_000;
const APP_LIMITS_TTL_MS = 60_000;
const exempt = new Set(["/health", "/v1/health", "/v1/docs", "/v1/openapi.json"]);
/** Where a person signs in to an app: its token endpoints, OAuth page and platform sign-in. */
const signIn = [
  /^\/v1\/apps\/([^/]+)\/tokens(?:\/refresh|\/revoke)?$/,
  /^\/v1\/apps\/([^/]+)\/oauth\/authorize$/,
  /^\/v1\/apps\/([^/]+)\/platforms\/[^/]+\/(?:login|callback)$/,
];
const inviteAccept = /^\/v1\/invites\/[^/]+\/accept$/;

interface Bucket {
  key: string;
  limit: number;
}

/**
 * Rate limits by class (docs/abuse.md): the admin key 100/min, sign-in (token endpoints, OAuth
 * page, platform login and callback, invite acceptance) 300/min per client IP and app,
 * `/v1/authorize` 1000/min per IP, everything else 100/min per authenticated caller (token, API
 * key, device secret), or per IP. A credential counts only once it has authenticated: a request
 * whose credential is missing or rejected is charged to its IP, so junk credentials buy no
 * budget of their own. An app may set its own token and default budgets in its settings. Every
 * limited response carries `X-RateLimit-Limit/Remaining/Reset`; a refusal is 429 with
 * `Retry-After`. A request that carries several operations (a GraphQL batch) charges the rest
 * through `c.var.chargeRateLimit`.
 */
export function rateLimit(ports: Ports) {
  const { config } = ports;
  const limiter = failOpen(ports.limiter, ports.logger);
  const appSettings = createTtlCache<Partial<AppSettings>>({
    ttlMs: APP_LIMITS_TTL_MS,
    maxEntries: 10_000,
    now: () => ports.clock.now().getTime(),
  });

  /** An app's own limits, by name or id, read at most once a minute per isolate. */
  function settingsOf(c: Context<AppEnv>, by: "name" | "id", value: string) {
    return appSettings.get(`${by}:${value}`, async () => {
      const [row] = await c.var
        .db()
        .select({ settings: apps.settings })
        .from(apps)
        .where(by === "name" ? sql`lower(${apps.name}) = lower(${value})` : eq(apps.id, value));
      return row?.settings ?? {};
    });
  }

  async function defaultBudgetOf(c: Context<AppEnv>, appId: string) {
    return (
      (await settingsOf(c, "id", appId)).default_rate_limit_per_minute ??
      config.RATE_LIMIT_DEFAULT_PER_MINUTE
    );
  }

  async function bucketOf(c: Context<AppEnv>): Promise<Bucket | undefined> {
    const path = c.req.path;
    if (exempt.has(path) || c.req.method === "OPTIONS") return undefined;
    const ip = ports.clientIp(c.req.raw, c.env) ?? "unknown";
    const signInApp = signIn.map((pattern) => pattern.exec(path)?.[1]).find(Boolean);
    if (signInApp !== undefined) {
      const app = decodeURIComponent(signInApp).toLowerCase();
      const limit =
        (await settingsOf(c, "name", app)).token_rate_limit_per_minute ??
        config.RATE_LIMIT_TOKEN_PER_MINUTE;
      return { key: `token:${app}:${ip}`, limit };
    }
    if (inviteAccept.test(path))
      return { key: `token:invites:${ip}`, limit: config.RATE_LIMIT_TOKEN_PER_MINUTE };
    if (path === "/v1/authorize" || path === "/v1/auth/validate") {
      return { key: `authorize:${ip}`, limit: config.RATE_LIMIT_AUTHORIZE_PER_MINUTE };
    }
    return (
      (await callerBucketOf(c)) ?? { key: `ip:${ip}`, limit: config.RATE_LIMIT_DEFAULT_PER_MINUTE }
    );
  }

  /** The bucket of the request's credential once it has authenticated; none if it did not. */
  async function callerBucketOf(c: Context<AppEnv>): Promise<Bucket | undefined> {
    const deviceSecret = deviceSecretOf(c);
    if (deviceSecret) {
      const device = await c.var.services.devices.verify(c.var.db, deviceSecret);
      if (!device) return undefined;
      return { key: `device:${device.id}`, limit: await defaultBudgetOf(c, device.appId) };
    }
    if (!c.req.header("authorization") && !c.req.header("x-api-key")) return undefined;
    // The route's own authentication reuses this subject and answers a rejected credential.
    const subject = await authenticate(c).catch(() => undefined);
    if (!subject) return undefined;
    if (subject.kind === "admin") {
      return { key: "admin", limit: config.RATE_LIMIT_ADMIN_PER_MINUTE };
    }
    const credential = credentialOf(c) ?? "";
    return {
      key: `cred:${(await sha256Hex(credential)).slice(0, 32)}`,
      limit: await defaultBudgetOf(c, subject.appId),
    };
  }

  return createMiddleware<AppEnv>(async function rateLimitMiddleware(c, next) {
    if (!config.RATE_LIMIT_ENABLED) return next();
    const bucket = await bucketOf(c);
    if (!bucket) return next();
    const charge = async (count: number) => {
      let result: RateLimitResult | undefined;
      for (let i = 0; i < count && result?.success !== false; i++) {
        result = await limiter.limit(`rl:${bucket.key}`, {
          limit: bucket.limit,
          windowMs: WINDOW_MS,
        });
      }
      if (result) answerWith(c, result, ports.clock.now().getTime());
    };
    c.set("chargeRateLimit", charge);
    await charge(1);
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
