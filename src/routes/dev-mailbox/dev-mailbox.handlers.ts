import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { serialize } from "../../lib/serialize";
import * as service from "../../services/dev-mailbox";
import type * as routes from "./dev-mailbox.routes";

export const listMailbox: RouteHandler<typeof routes.listMailbox, AppEnv> = async (c) => {
  const messages = await service.listMailbox(c.var.services, c.req.valid("query"));
  c.header("Cache-Control", "no-store");
  return c.json({ data: messages.map(serialize) }, 200);
};
