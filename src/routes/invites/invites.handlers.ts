import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, issuerBase, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import { issuerFor } from "../../services/access-tokens";
import * as service from "../../services/invites";
import { findUser } from "../../services/users";
import type * as routes from "./invites.routes";

export const createInvite: RouteHandler<typeof routes.createInvite, AppEnv> = async (c) => {
  const invite = await service.createInvite(c.var.services, appInScope(c), c.req.valid("json"));
  const inviteUrl = absoluteUrl(c, `/v1/invites/${invite.token}/accept`);
  c.header("Cache-Control", "no-store");
  return c.json(
    {
      data: { ...serialize(invite), invite_url: inviteUrl },
      _links: { self: absoluteUrl(c, `${scopePath(c)}/invites/${invite.id}`), accept: inviteUrl },
    },
    201,
  );
};

export const listInvites: RouteHandler<typeof routes.listInvites, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listPendingInvites(c.var.services, appInScope(c).id, page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const revokeInvite: RouteHandler<typeof routes.revokeInvite, AppEnv> = async (c) => {
  const { invite_id } = c.req.valid("param");
  const invite = await service.revokeInvite(c.var.services, appInScope(c), invite_id);
  return c.json(
    {
      data: serialize(invite),
      _links: { self: absoluteUrl(c, `${scopePath(c)}/invites/${invite.id}`) },
    },
    200,
  );
};

export const acceptInvite: RouteHandler<typeof routes.acceptInvite, AppEnv> = async (c) => {
  const { app, user, tokens } = await service.acceptInvite(
    c.var.services,
    c.req.valid("param").invite_token,
    c.req.valid("json"),
    (app) => issuerFor(issuerBase(c), app.name),
  );
  const created = await findUser(c.var.services, app.id, user.id);
  c.header("Cache-Control", "no-store");
  return c.json({ ...tokens, user: serialize(created) }, 201);
};
