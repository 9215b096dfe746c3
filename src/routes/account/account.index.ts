import { createRouter } from "../../http/router";
import * as handlers from "./account.handlers";
import * as routes from "./account.routes";

/** The signed-in user's own account: activity, data export and erasure. */
export const accountRouter = createRouter()
  .openapi(routes.activity, handlers.activity)
  .openapi(routes.exportData, handlers.exportData)
  .openapi(routes.erase, handlers.erase)
  .openapi(routes.listGrants, handlers.listGrants)
  .openapi(routes.revokeGrant, handlers.revokeGrant);
