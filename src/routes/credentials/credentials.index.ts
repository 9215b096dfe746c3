import { createRouter } from "../../http/router";
import * as handlers from "./credentials.handlers";
import * as routes from "./credentials.routes";

/** Service credentials (M2M): mounted under `/v1/apps/:app_name` only, for the platform admin. */
export const credentialsRouter = createRouter()
  .openapi(routes.createCredential, handlers.createCredential)
  .openapi(routes.listCredentials, handlers.listCredentials)
  .openapi(routes.updateCredential, handlers.updateCredential)
  .openapi(routes.revokeCredential, handlers.revokeCredential);
