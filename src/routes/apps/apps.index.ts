import { createRouter } from "../../http/router";
import * as handlers from "./apps.handlers";
import * as routes from "./apps.routes";

/** `/v1/apps…`: the tenants themselves, for the platform admin. */
export const appsRouter = createRouter()
  .openapi(routes.createApp, handlers.createApp)
  .openapi(routes.listApps, handlers.listApps)
  .openapi(routes.getApp, handlers.getApp)
  .openapi(routes.updateApp, handlers.updateApp)
  .openapi(routes.archiveApp, handlers.archiveApp);

/** The app's settings and keys: mounted under `/v1/apps/:app_name` and at `/v1`. */
export const appSettingsRouter = createRouter()
  .openapi(routes.getSettings, handlers.getSettings)
  .openapi(routes.updateSettings, handlers.updateSettings)
  .openapi(routes.rotateKeys, handlers.rotateKeys);
