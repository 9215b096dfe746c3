import { createRouter } from "../../http/router";
import * as handlers from "./platforms.handlers";
import * as routes from "./platforms.routes";

/** An app's authentication platforms: mounted under `/v1/apps/:app_name` and at `/v1`. */
export const platformsRouter = createRouter()
  .openapi(routes.createPlatform, handlers.createPlatform)
  .openapi(routes.listPlatforms, handlers.listPlatforms)
  .openapi(routes.getPlatform, handlers.getPlatform)
  .openapi(routes.updatePlatform, handlers.updatePlatform)
  .openapi(routes.deletePlatform, handlers.deletePlatform);

/** Sign-in with a platform, `/v1/apps/{app_name}/platforms/{name}/{login,callback}`: public. */
export const platformLoginRouter = createRouter()
  .openapi(routes.startLogin, handlers.startLogin)
  .openapi(routes.startLink, handlers.startLink)
  .openapi(routes.callback, handlers.callback);
