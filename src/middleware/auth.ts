import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../app-env";
import { sha256Hex, timingSafeEqual } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { issuerBase } from "../lib/links";
import { type AccessClaims, verifyAccessToken } from "../services/access-tokens";
import { findAppById, findAppByName } from "../services/apps";
import { hasPermission } from "../services/permissions";

/** Who is calling: the platform admin, or a user of one app (by access token). */
export type Subject =
  | { kind: "admin" }
  | {
      kind: "user";
      appId: string;
      userId: string;
      roles: string[];
      permissions: string[];
      claims: AccessClaims;
    };

const challenge = { "WWW-Authenticate": `Bearer realm="heimdall"` };

/** The bearer credential of a request, if any. */
export function bearerToken(c: Context<AppEnv>): string | undefined {
  const header = c.req.header("authorization");
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) {
    throw new ApiError("unauthorized", "Authorization must be `Bearer <token>`", {
      headers: challenge,
    });
  }
  return match[1];
}

const looksLikeJwt = (token: string) => token.split(".").length === 3;

/** Authenticates the request's bearer credential; 401 when it is missing or invalid. */
export async function authenticate(c: Context<AppEnv>): Promise<Subject> {
  const existing = c.get("subject");
  if (existing) return existing;
  const token = bearerToken(c);
  if (!token) throw new ApiError("unauthorized", "Authentication required", { headers: challenge });
  const { ports } = c.var;

  let subject: Subject;
  if (looksLikeJwt(token)) {
    const claims = await verifyAccessToken(
      { keys: ports.keys, clock: ports.clock, revocations: ports.revocations, db: c.var.db },
      token,
      issuerBase(c),
    );
    subject = {
      kind: "user",
      appId: claims.app,
      userId: claims.sub,
      roles: claims.roles,
      permissions: claims.permissions,
      claims,
    };
  } else if (timingSafeEqual(await sha256Hex(token), ports.adminKeyHash)) {
    subject = { kind: "admin" };
  } else {
    throw new ApiError("unauthorized", "Invalid credentials", {
      headers: { "WWW-Authenticate": `Bearer realm="heimdall", error="invalid_token"` },
    });
  }
  c.set("subject", subject);
  return subject;
}

type GuardOptions =
  /** Platform admin only (`/v1/apps`). */
  | { scope: "platform" }
  /**
   * An app's resources, mounted twice: under `/v1/apps/:app_name` for the platform admin, at
   * the top level for the app's own users holding `permission`, scoped to their token's app.
   */
  | { scope: "app"; permission: string }
  /** Any user of an app, about themselves (`/v1/users/me`). */
  | { scope: "self" };

/**
 * Route middleware: authenticates, resolves the app in scope into `c.var.app`, checks the
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
    const db = c.var.db();

    if (options.scope === "platform" || appName !== undefined) {
      if (subject.kind !== "admin") {
        throw new ApiError("forbidden", "This route needs the platform admin key");
      }
      if (appName !== undefined) c.set("app", await findAppByName(db, appName));
      return next();
    }
    if (subject.kind !== "user") {
      throw new ApiError(
        "forbidden",
        "The platform admin manages apps under /v1/apps/{app_name}/…, not here",
      );
    }
    if (options.scope === "app" && !hasPermission(subject.permissions, options.permission)) {
      throw new ApiError("forbidden", `Missing permission ${options.permission}`);
    }
    c.set("app", await findAppById(db, subject.appId));
    return next();
  });
}

/** The app a guarded route works on. */
export function appInScope(c: Context<AppEnv>) {
  const app = c.get("app");
  if (!app) throw new Error("appInScope() used on a route without guard()");
  return app;
}
