import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, issuerBase, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { ApiError } from "../../lib/errors";
import { serialize } from "../../lib/serialize";
import { appInScope, selfOf } from "../../middleware/auth";
import { issuerFor } from "../../services/access-tokens";
import { findAppByName } from "../../services/apps";
import {
  callbackUrl,
  completePlatformLogin,
  startPlatformLogin,
} from "../../services/platform-sign-in";
import * as service from "../../services/platforms";
import type * as routes from "./platforms.routes";

function resource(c: Context<AppEnv>, platform: service.PlatformView, appName: string) {
  return {
    data: serialize(platform),
    _links: {
      self: absoluteUrl(c, `${scopePath(c)}/platforms/${platform.id}`),
      login: absoluteUrl(
        c,
        `/v1/apps/${encodeURIComponent(appName)}/platforms/${encodeURIComponent(platform.name)}/login`,
      ),
    },
  };
}

/** `trusted` lets a provider's verified email sign in existing users: the platform admin's call. */
function assertMayTrust(c: Context<AppEnv>, body: { trusted?: boolean | undefined }) {
  if (body.trusted !== undefined && c.var.subject?.kind !== "admin") {
    throw new ApiError("forbidden", "Only the platform admin sets trusted");
  }
}

export const createPlatform: RouteHandler<typeof routes.createPlatform, AppEnv> = async (c) => {
  const app = appInScope(c);
  const input = c.req.valid("json");
  // The schema defaults it to false: only an explicit `true` needs the platform admin.
  assertMayTrust(c, { trusted: input.trusted || undefined });
  const platform = await service.createPlatform(c.var.services, app, input);
  const body = resource(c, platform, app.name);
  c.header("Location", body._links.self);
  return c.json(body, 201);
};

export const listPlatforms: RouteHandler<typeof routes.listPlatforms, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listPlatforms(c.var.services, appInScope(c), page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const getPlatform: RouteHandler<typeof routes.getPlatform, AppEnv> = async (c) => {
  const app = appInScope(c);
  const platform = await service.findPlatform(
    c.var.services,
    app,
    c.req.valid("param").platform_id,
  );
  return c.json(resource(c, service.platformView(platform), app.name), 200);
};

export const updatePlatform: RouteHandler<typeof routes.updatePlatform, AppEnv> = async (c) => {
  const app = appInScope(c);
  const changes = c.req.valid("json");
  assertMayTrust(c, changes);
  const platform = await service.updatePlatform(
    c.var.services,
    app,
    c.req.valid("param").platform_id,
    changes,
  );
  return c.json(resource(c, platform, app.name), 200);
};

export const deletePlatform: RouteHandler<typeof routes.deletePlatform, AppEnv> = async (c) => {
  await service.deletePlatform(c.var.services, appInScope(c), c.req.valid("param").platform_id);
  return c.body(null, 204);
};

export const startLogin: RouteHandler<typeof routes.startLogin, AppEnv> = async (c) => {
  const { app_name, name } = c.req.valid("param");
  const app = await findAppByName(c.var.services, app_name);
  const appIssuer = issuerFor(issuerBase(c), app.name);
  const url = await startPlatformLogin(c.var.services, app, {
    platformName: name,
    redirectUri: callbackUrl(appIssuer, name),
  });
  c.header("Cache-Control", "no-store");
  return c.redirect(url.href, 302);
};

export const startLink: RouteHandler<typeof routes.startLink, AppEnv> = async (c) => {
  const app = appInScope(c);
  const { name } = c.req.valid("param");
  const url = await startPlatformLogin(c.var.services, app, {
    platformName: name,
    redirectUri: callbackUrl(issuerFor(issuerBase(c), app.name), name),
    linkUserId: selfOf(c).userId,
  });
  c.header("Cache-Control", "no-store");
  return c.json({ data: { authorization_url: url.href } }, 200);
};

export const callback: RouteHandler<typeof routes.callback, AppEnv> = async (c) => {
  const { app_name, name } = c.req.valid("param");
  const app = await findAppByName(c.var.services, app_name);
  const issuer = issuerFor(issuerBase(c), app.name);
  const tokens = await completePlatformLogin(c.var.services, app, {
    platformName: name,
    // The redirect_uri of the authorization request, exactly: the token endpoint compares them.
    redirectUri: callbackUrl(issuer, name),
    // As sent (with `iss`, RFC 9207), not as validated: openid-client checks the response itself.
    params: new URL(c.req.url).searchParams,
    issuer,
  });
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
  return c.json(tokens, 200);
};
