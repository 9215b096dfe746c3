import { createRouter } from "../../http/router";
import * as handlers from "./discovery.handlers";
import * as routes from "./discovery.routes";

/** JWKS and OpenID discovery, so `jose`, `jwks-rsa` and `openid-client` verify tokens offline. */
export const discoveryRouter = createRouter()
  .openapi(routes.jwks, handlers.jwks)
  .openapi(routes.appJwks, handlers.appJwks)
  .openapi(routes.openidConfiguration, handlers.openidConfiguration);
