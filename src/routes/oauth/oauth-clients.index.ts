import { createRouter } from "../../http/router";
import * as handlers from "./oauth-clients.handlers";
import * as routes from "./oauth-clients.routes";

/** An app's OAuth clients: under `/v1/apps/:app_name` (admin) and at `/v1` (the app's callers). */
export const oauthClientsRouter = createRouter()
  .openapi(routes.createClient, handlers.createClient)
  .openapi(routes.listClients, handlers.listClients)
  .openapi(routes.getClient, handlers.getClient)
  .openapi(routes.updateClient, handlers.updateClient)
  .openapi(routes.rotateSecret, handlers.rotateSecret)
  .openapi(routes.deleteClient, handlers.deleteClient);
