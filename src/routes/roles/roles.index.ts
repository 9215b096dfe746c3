import { createRouter } from "../../http/router";
import * as handlers from "./roles.handlers";
import * as routes from "./roles.routes";

/** An app's roles and the permission catalogue: mounted under `/v1/apps/:app_name` and at `/v1`. */
export const rolesRouter = createRouter()
  .openapi(routes.createRole, handlers.createRole)
  .openapi(routes.listRoles, handlers.listRoles)
  .openapi(routes.getRole, handlers.getRole)
  .openapi(routes.updateRole, handlers.updateRole)
  .openapi(routes.deleteRole, handlers.deleteRole)
  .openapi(routes.listPermissions, handlers.listPermissions);
