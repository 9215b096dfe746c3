import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import * as service from "../../services/apps";
import type * as routes from "./apps.routes";

function appResource(c: Context<AppEnv>, app: service.AppRecord) {
  const { settings: _settings, ...fields } = app;
  const base = `/v1/apps/${encodeURIComponent(app.name)}`;
  return {
    data: serialize(fields),
    _links: {
      self: absoluteUrl(c, base),
      users: absoluteUrl(c, `${base}/users`),
      roles: absoluteUrl(c, `${base}/roles`),
      settings: absoluteUrl(c, `${base}/settings`),
      audit_logs: absoluteUrl(c, `${base}/audit-logs`),
      jwks: absoluteUrl(c, `${base}/.well-known/jwks.json`),
      openid_configuration: absoluteUrl(c, `${base}/.well-known/openid-configuration`),
    },
  };
}

export const createApp: RouteHandler<typeof routes.createApp, AppEnv> = async (c) => {
  const app = await service.createApp(c.var.services, c.req.valid("json"));
  c.header("Location", absoluteUrl(c, `/v1/apps/${app.name}`));
  return c.json(appResource(c, app), 201);
};

export const listApps: RouteHandler<typeof routes.listApps, AppEnv> = async (c) => {
  const { limit, offset, status } = c.req.valid("query");
  const { data: rows, total } = await service.listApps(
    c.var.services,
    { status },
    { limit, offset },
  );
  const data = rows.map(({ settings: _settings, ...fields }) => serialize(fields));
  return c.json(paginated(c, data, total, { limit, offset }), 200);
};

export const getApp: RouteHandler<typeof routes.getApp, AppEnv> = (c) =>
  c.json(appResource(c, appInScope(c)), 200);

export const updateApp: RouteHandler<typeof routes.updateApp, AppEnv> = async (c) => {
  const app = await service.updateApp(c.var.services, appInScope(c), c.req.valid("json"));
  return c.json(appResource(c, app), 200);
};

export const archiveApp: RouteHandler<typeof routes.archiveApp, AppEnv> = async (c) => {
  const app = await service.archiveApp(c.var.services, appInScope(c));
  return c.json(appResource(c, app), 200);
};

function settingsResource(c: Context<AppEnv>, settings: ReturnType<typeof service.settingsOf>) {
  return { data: settings, _links: { self: absoluteUrl(c, c.req.path) } };
}

export const getSettings: RouteHandler<typeof routes.getSettings, AppEnv> = (c) =>
  c.json(settingsResource(c, service.settingsOf(appInScope(c))), 200);

export const updateSettings: RouteHandler<typeof routes.updateSettings, AppEnv> = async (c) => {
  const app = appInScope(c);
  const ctx = c.var.services;
  const { settings, algorithmChanged } = await service.updateSettings(
    ctx,
    app,
    c.req.valid("json"),
  );
  if (algorithmChanged)
    await c.var.services.keys.rotate(ctx.db, app.id, settings.signing_algorithm);
  return c.json(settingsResource(c, settings), 200);
};

export const rotateKeys: RouteHandler<typeof routes.rotateKeys, AppEnv> = async (c) => {
  const app = appInScope(c);
  const ctx = c.var.services;
  const alg = service.settingsOf(app).signing_algorithm;
  const key = await c.var.services.keys.rotate(ctx.db, app.id, alg);
  await service.recordKeyRotation(ctx, app, key.kid);
  return c.json(
    {
      data: { kid: key.kid, alg: key.alg },
      _links: { jwks: absoluteUrl(c, `/v1/apps/${app.name}/.well-known/jwks.json`) },
    },
    201,
  );
};
