import { createRouter } from "../../http/router";
import * as handlers from "./bans.handlers";
import * as routes from "./bans.routes";

/** `/v1/admin/bans`: the platform admin bans users, addresses and ranges. */
export const bansRouter = createRouter()
  .openapi(routes.createBan, handlers.createBan)
  .openapi(routes.listBans, handlers.listBans)
  .openapi(routes.getBan, handlers.getBan)
  .openapi(routes.liftBan, handlers.liftBan);
