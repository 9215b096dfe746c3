import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import * as service from "../../services/oauth-clients";
import type * as routes from "./oauth-clients.routes";

function resource<T extends { id: string }>(c: Context<AppEnv>, client: T) {
  return {
    data: serialize(client),
    _links: { self: absoluteUrl(c, `${scopePath(c)}/oauth/clients/${client.id}`) },
  };
}

export const createClient: RouteHandler<typeof routes.createClient, AppEnv> = async (c) => {
  const client = await service.createClient(c.var.services, appInScope(c), c.req.valid("json"));
  const body = resource(c, client);
  c.header("Location", body._links.self);
  c.header("Cache-Control", "no-store");
  return c.json(body, 201);
};

export const listClients: RouteHandler<typeof routes.listClients, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listClients(c.var.services, appInScope(c).id, page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const getClient: RouteHandler<typeof routes.getClient, AppEnv> = async (c) => {
  const row = await service.findClient(
    c.var.services,
    appInScope(c).id,
    c.req.valid("param").client_id,
  );
  return c.json(resource(c, service.clientView(row)), 200);
};

export const updateClient: RouteHandler<typeof routes.updateClient, AppEnv> = async (c) => {
  const client = await service.updateClient(
    c.var.services,
    appInScope(c),
    c.req.valid("param").client_id,
    c.req.valid("json"),
  );
  return c.json(resource(c, client), 200);
};

export const rotateSecret: RouteHandler<typeof routes.rotateSecret, AppEnv> = async (c) => {
  const client = await service.rotateClientSecret(
    c.var.services,
    appInScope(c),
    c.req.valid("param").client_id,
  );
  c.header("Cache-Control", "no-store");
  return c.json(resource(c, client), 200);
};

export const deleteClient: RouteHandler<typeof routes.deleteClient, AppEnv> = async (c) => {
  await service.deleteClient(c.var.services, appInScope(c), c.req.valid("param").client_id);
  return c.body(null, 204);
};
