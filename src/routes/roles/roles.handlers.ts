import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import { permissionCatalogue } from "../../services/permissions";
import * as service from "../../services/roles";
import type * as routes from "./roles.routes";

function roleResource(c: Context<AppEnv>, role: service.RoleRecord) {
  return {
    data: serialize(role),
    _links: { self: absoluteUrl(c, `${scopePath(c)}/roles/${role.name}`) },
  };
}

export const createRole: RouteHandler<typeof routes.createRole, AppEnv> = async (c) => {
  const role = await service.createRole(c.var.services, appInScope(c), c.req.valid("json"));
  const resource = roleResource(c, role);
  c.header("Location", resource._links.self);
  return c.json(resource, 201);
};

export const listRoles: RouteHandler<typeof routes.listRoles, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listRoles(c.var.services, appInScope(c).id, page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const getRole: RouteHandler<typeof routes.getRole, AppEnv> = async (c) => {
  const role = await service.findRole(
    c.var.services,
    appInScope(c).id,
    c.req.valid("param").role_name,
  );
  return c.json(roleResource(c, role), 200);
};

export const updateRole: RouteHandler<typeof routes.updateRole, AppEnv> = async (c) => {
  const { role_name } = c.req.valid("param");
  const role = await service.updateRole(
    c.var.services,
    appInScope(c),
    role_name,
    c.req.valid("json"),
  );
  return c.json(roleResource(c, role), 200);
};

export const deleteRole: RouteHandler<typeof routes.deleteRole, AppEnv> = async (c) => {
  await service.deleteRole(c.var.services, appInScope(c), c.req.valid("param").role_name);
  return c.body(null, 204);
};

export const listPermissions: RouteHandler<typeof routes.listPermissions, AppEnv> = (c) =>
  c.json({ data: [...permissionCatalogue], _links: { self: absoluteUrl(c, c.req.path) } }, 200);
