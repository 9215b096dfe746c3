import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import * as service from "../../services/bans";
import type * as routes from "./bans.routes";

const resource = (c: Context<AppEnv>, ban: service.BanRecord) => ({
  data: serialize(ban),
  _links: { self: absoluteUrl(c, `/v1/admin/bans/${ban.id}`) },
});

export const createBan: RouteHandler<typeof routes.createBan, AppEnv> = async (c) => {
  const ban = await service.createBan(c.var.services, c.req.valid("json"));
  return c.json(resource(c, ban), 201);
};

export const listBans: RouteHandler<typeof routes.listBans, AppEnv> = async (c) => {
  const { limit, offset, active, kind } = c.req.valid("query");
  const { data, total } = await service.listBans(
    c.var.services,
    { active, kind },
    { limit, offset },
  );
  return c.json(paginated(c, data.map(serialize), total, { limit, offset }), 200);
};

export const getBan: RouteHandler<typeof routes.getBan, AppEnv> = async (c) =>
  c.json(resource(c, await service.findBan(c.var.services, c.req.valid("param").ban_id)), 200);

export const liftBan: RouteHandler<typeof routes.liftBan, AppEnv> = async (c) => {
  const ban = await service.liftBan(c.var.services, c.req.valid("param").ban_id);
  return c.json(resource(c, ban), 200);
};
