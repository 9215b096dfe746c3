import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { afterResponse } from "../http/after-response";
import type { AppEnv } from "../http/app-env";
import { issuerBase } from "../http/links";
import { sha256Hex, timingSafeEqual } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { verifyAccessToken } from "../services/access-tokens";
import { API_KEY_PREFIX } from "../services/api-key-verifier";
import { findAppById, findAppByName } from "../services/apps";
import { type AppSubject, assertAppCaller, type Subject } from "../services/subject";

const challenge = { "WWW-Authenticate": `Bearer realm="heimdall"` };
const invalid = () =>
  new ApiError("unauthorized", "Invalid credentials", {
    headers: { "WWW-Authenticate": `Bearer realm="heimdall", error="invalid_token"` },
  });

/**
 * The request's `Authorization` header, read once: the limiter, the device check and the route's
 * authentication all look at it, and `@hono/node-server` normalises and checks the value (a JWT
 * of ~800 characters) on every read.
 */
export function authorizationOf(c: Context<AppEnv>): string | undefined {
  let header = c.get("authorizationHeader");
  if (header === undefined) {
    header = c.req.header("authorization") ?? null;
    c.set("authorizationHeader", header);
  }
  return header ?? undefined;
}

/** The credential of a request: `Authorization: Bearer …` or `X-API-Key: pk_…`. */
export function credentialOf(c: Context<AppEnv>): string | undefined {
  const header = authorizationOf(c);
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      throw new ApiError("unauthorized", "Authorization must be `Bearer <token>`", {
        headers: challenge,
      });
    }
    return match[1];
  }
  return c.req.header("x-api-key")?.trim() || undefined;
}

/** Three dot-separated parts (counted without splitting a token of ~800 characters twice a request). */
function looksLikeJwt(token: string) {
  const first = token.indexOf(".");
  const second = first < 0 ? -1 : token.indexOf(".", first + 1);
  return second >= 0 && !token.includes(".", second + 1);
}

/** The subject of an app token or API key, or undefined when it is not valid. */
export async function subjectOfToken(
  c: Context<AppEnv>,
  token: string,
): Promise<AppSubject | undefined> {
  const services = c.get("services");
  if (token.startsWith(API_KEY_PREFIX)) {
    const grant = await services.apiKeys.verify(c.get("db"), token);
    if (!grant) return undefined;
    flushKeyUsageLater(c);
    return { kind: "api_key", ...grant };
  }
  if (!looksLikeJwt(token)) return undefined;
  const claims = await verifyAccessToken(services, token, issuerBase(c));
  const grants = {
    appId: claims.app,
    roles: claims.roles,
    permissions: claims.permissions,
    claims,
  };
  // A token an OAuth client got for a user is the user's (with the granted permissions only).
  return claims.client_id && !claims.sub.startsWith("usr_")
    ? { kind: "service", credentialId: claims.sub, ...grants }
    : { kind: "user", userId: claims.sub, ...grants };
}

/** `last_used_at` of API keys is written in batches, after the response where possible. */
function flushKeyUsageLater(c: Context<AppEnv>) {
  afterResponse(c, c.get("services").apiKeys.flushUsage(c.get("db")()), "api key usage flush");
}

/**
 * Authenticates the request's credential; 401 when it is missing or invalid. Once per request:
 * the rate limiter's attempt (before the route) is the route's answer too, success or failure.
 */
export function authenticate(c: Context<AppEnv>): Promise<Subject> {
  let attempt = c.get("authentication");
  if (!attempt) {
    attempt = authenticateCredential(c);
    c.set("authentication", attempt);
  }
  return attempt;
}

async function authenticateCredential(c: Context<AppEnv>): Promise<Subject> {
  const token = credentialOf(c);
  if (!token) throw new ApiError("unauthorized", "Authentication required", { headers: challenge });

  let subject: Subject | undefined;
  if (token.startsWith(API_KEY_PREFIX) || looksLikeJwt(token)) {
    subject = await subjectOfToken(c, token);
  } else if (timingSafeEqual(await sha256Hex(token), c.get("services").adminKeyHash)) {
    subject = { kind: "admin" };
  }
  if (!subject) throw invalid();
  c.set("subject", subject);
  return subject;
}

type GuardOptions =
  /** Platform admin only (`/v1/apps`). */
  | { scope: "platform" }
  /**
   * An app's resources, mounted twice: under `/v1/apps/:app_name` for the platform admin, at
   * the top level for the app's users, services and API keys holding `permission`, scoped to
   * their own app.
   */
  | { scope: "app"; permission: string }
  /** A user of an app, about themselves (`/v1/users/me`). */
  | { scope: "self" };

/**
 * Route middleware: authenticates, resolves the app in scope into `c.get("app")`, checks the
 * permission. Authentication runs before validation, so an anonymous caller learns nothing
 * about the request's shape.
 *
 * @example
 * createRoute({ …, middleware: [guard({ scope: "app", permission: "users:read" })] })
 */
export function guard(options: GuardOptions) {
  return createMiddleware<AppEnv>(async function guardMiddleware(c, next) {
    const subject = await authenticate(c);
    const appName = c.req.param("app_name");
    if (options.scope === "platform" || appName !== undefined) {
      if (subject.kind !== "admin") {
        throw new ApiError("forbidden", "This route needs the platform admin key");
      }
      if (appName !== undefined) c.set("app", await findAppByName(c.get("services"), appName));
      return next();
    }
    assertAppCaller(subject, options.scope === "app" ? options.permission : undefined);
    if (options.scope === "self" && subject.kind !== "user") {
      throw new ApiError("forbidden", "Only a user signed in with a password has this");
    }
    c.set("app", await findAppById(c.get("services"), subject.appId));
    return next();
  });
}

/** The app a guarded route works on. */
export function appInScope(c: Context<AppEnv>) {
  const app = c.get("app");
  if (!app) throw new Error("appInScope() used on a route without guard()");
  return app;
}

/** The user a `scope: "self"` route works for. */
export function selfOf(c: Context<AppEnv>) {
  const subject = c.get("subject");
  if (subject?.kind !== "user") throw new ApiError("forbidden", "Only a user has this");
  return subject;
}
