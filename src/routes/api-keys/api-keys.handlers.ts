import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import * as service from "../../services/api-keys";
import type * as routes from "./api-keys.routes";

const selfLink = (c: Context<AppEnv>, id: string) =>
  absoluteUrl(c, `${scopePath(c)}/api-keys/${id}`);

export const createApiKey: RouteHandler<typeof routes.createApiKey, AppEnv> = async (c) => {
  const key = await service.createApiKey(c.var.services, appInScope(c), c.req.valid("json"));
  c.header("Location", selfLink(c, key.id));
  c.header("Cache-Control", "no-store");
  return c.json({ data: serialize(key), _links: { self: selfLink(c, key.id) } }, 201);
};

export const listApiKeys: RouteHandler<typeof routes.listApiKeys, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listApiKeys(c.var.services, appInScope(c).id, page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const getApiKey: RouteHandler<typeof routes.getApiKey, AppEnv> = async (c) => {
  const { key_id } = c.req.valid("param");
  const key = await service.findApiKey(c.var.services, appInScope(c).id, key_id);
  return c.json({ data: serialize(key), _links: { self: selfLink(c, key.id) } }, 200);
};

export const revokeApiKey: RouteHandler<typeof routes.revokeApiKey, AppEnv> = async (c) => {
  const { key_id } = c.req.valid("param");
  const key = await service.revokeApiKey(c.var.services, appInScope(c), key_id);
  return c.json({ data: serialize(key), _links: { self: selfLink(c, key.id) } }, 200);
};
