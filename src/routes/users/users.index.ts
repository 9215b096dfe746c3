import { createRouter } from "../../http/router";
import * as handlers from "./users.handlers";
import * as routes from "./users.routes";

/** `/v1/users/me…`: only at the top level, for the token's own user and sessions. */
export const meRouter = createRouter()
  .openapi(routes.getMe, handlers.getMe)
  .openapi(routes.listSessions, handlers.listSessions)
  .openapi(routes.endSession, handlers.endSession)
  .openapi(routes.endOtherSessions, handlers.endOtherSessions);

/** An app's users: mounted under `/v1/apps/:app_name` (admin) and at `/v1` (the app's users). */
export const usersRouter = createRouter()
  .openapi(routes.createUser, handlers.createUser)
  .openapi(routes.listUsers, handlers.listUsers)
  .openapi(routes.getUser, handlers.getUser)
  .openapi(routes.updateUser, handlers.updateUser)
  .openapi(routes.deactivateUser, handlers.deactivateUser)
  .openapi(routes.assignRole, handlers.assignRole)
  .openapi(routes.removeRole, handlers.removeRole);
