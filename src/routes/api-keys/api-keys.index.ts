import { createRouter } from "../../http/router";
import * as handlers from "./api-keys.handlers";
import * as routes from "./api-keys.routes";

/** An app's API keys: mounted under `/v1/apps/:app_name` and at `/v1`. */
export const apiKeysRouter = createRouter()
  .openapi(routes.createApiKey, handlers.createApiKey)
  .openapi(routes.listApiKeys, handlers.listApiKeys)
  .openapi(routes.getApiKey, handlers.getApiKey)
  .openapi(routes.revokeApiKey, handlers.revokeApiKey);
