import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import * as service from "../../services/credentials";
import type * as routes from "./credentials.routes";

function resource<T extends { id: string }>(c: Context<AppEnv>, credential: T) {
  return {
    data: serialize(credential),
    _links: { self: absoluteUrl(c, `${scopePath(c)}/credentials/${credential.id}`) },
  };
}

export const createCredential: RouteHandler<typeof routes.createCredential, AppEnv> = async (c) => {
  const credential = await service.createCredential(
    c.var.services,
    appInScope(c),
    c.req.valid("json"),
  );
  c.header("Cache-Control", "no-store");
  return c.json(resource(c, credential), 201);
};

export const listCredentials: RouteHandler<typeof routes.listCredentials, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listCredentials(c.var.services, appInScope(c).id, page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const updateCredential: RouteHandler<typeof routes.updateCredential, AppEnv> = async (c) => {
  const credential = await service.updateCredential(
    c.var.services,
    appInScope(c),
    c.req.valid("param").credential_id,
    c.req.valid("json"),
  );
  c.header("Cache-Control", "no-store");
  return c.json(resource(c, credential), 200);
};

export const revokeCredential: RouteHandler<typeof routes.revokeCredential, AppEnv> = async (c) => {
  const credential = await service.revokeCredential(
    c.var.services,
    appInScope(c),
    c.req.valid("param").credential_id,
  );
  return c.json(resource(c, credential), 200);
};
