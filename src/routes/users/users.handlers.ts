import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope, selfOf } from "../../middleware/auth";
import * as sessions from "../../services/session-lifecycle";
import * as service from "../../services/users";
import type * as routes from "./users.routes";

function userResource(c: Context<AppEnv>, user: service.UserView) {
  const self = `${scopePath(c)}/users/${user.id}`;
  return {
    data: serialize(user),
    _links: { self: absoluteUrl(c, self), roles: absoluteUrl(c, `${self}/roles`) },
  };
}

export const getMe: RouteHandler<typeof routes.getMe, AppEnv> = async (c) => {
  const subject = selfOf(c);
  const user = await service.findUser(c.var.services, subject.appId, subject.userId);
  return c.json({ data: serialize(user), _links: { self: absoluteUrl(c, "/v1/users/me") } }, 200);
};

export const createUser: RouteHandler<typeof routes.createUser, AppEnv> = async (c) => {
  const user = await service.createUser(c.var.services, appInScope(c), c.req.valid("json"));
  const resource = userResource(c, user);
  c.header("Location", resource._links.self);
  return c.json(resource, 201);
};

export const listUsers: RouteHandler<typeof routes.listUsers, AppEnv> = async (c) => {
  const { limit, offset, status, email } = c.req.valid("query");
  const { data, total } = await service.listUsers(
    c.var.services,
    appInScope(c).id,
    { limit, offset },
    { status, email },
  );
  return c.json(paginated(c, data.map(serialize), total, { limit, offset }), 200);
};

export const getUser: RouteHandler<typeof routes.getUser, AppEnv> = async (c) => {
  const user = await service.findUser(
    c.var.services,
    appInScope(c).id,
    c.req.valid("param").user_id,
  );
  return c.json(userResource(c, user), 200);
};

export const updateUser: RouteHandler<typeof routes.updateUser, AppEnv> = async (c) => {
  const user = await service.updateUser(
    c.var.services,
    appInScope(c),
    c.req.valid("param").user_id,
    c.req.valid("json"),
  );
  return c.json(userResource(c, user), 200);
};

export const deactivateUser: RouteHandler<typeof routes.deactivateUser, AppEnv> = async (c) => {
  const user = await service.updateUser(
    c.var.services,
    appInScope(c),
    c.req.valid("param").user_id,
    { status: "deactivated" },
  );
  return c.json(userResource(c, user), 200);
};

export const assignRole: RouteHandler<typeof routes.assignRole, AppEnv> = async (c) => {
  const user = await service.assignRole(
    c.var.services,
    appInScope(c),
    c.req.valid("param").user_id,
    c.req.valid("json").role,
  );
  return c.json(userResource(c, user), 200);
};

export const removeRole: RouteHandler<typeof routes.removeRole, AppEnv> = async (c) => {
  const { user_id, role_name } = c.req.valid("param");
  const user = await service.removeRole(c.var.services, appInScope(c), user_id, role_name);
  return c.json(userResource(c, user), 200);
};

export const listSessions: RouteHandler<typeof routes.listSessions, AppEnv> = async (c) => {
  const subject = selfOf(c);
  const rows = await sessions.listSessions(c.var.services, subject.userId);
  const data = rows.map(({ revoked_at, revoked_reason, app_id, user_id, ...session }) => ({
    ...serialize(session),
    current: session.id === subject.claims.sid,
  }));
  return c.json({ data, _links: { self: absoluteUrl(c, "/v1/users/me/sessions") } }, 200);
};

export const endSession: RouteHandler<typeof routes.endSession, AppEnv> = async (c) => {
  const subject = selfOf(c);
  await sessions.endUserSessions(c.var.services, appInScope(c), subject.userId, {
    id: c.req.valid("param").session_id,
  });
  return c.body(null, 204);
};

export const endOtherSessions: RouteHandler<typeof routes.endOtherSessions, AppEnv> = async (c) => {
  const subject = selfOf(c);
  const ended = await sessions.endUserSessions(c.var.services, appInScope(c), subject.userId, {
    allBut: subject.claims.sid,
  });
  return c.json({ data: { ended } }, 200);
};
