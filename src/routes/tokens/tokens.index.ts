import { createRouter } from "../../http/router";
import * as handlers from "./tokens.handlers";
import * as routes from "./tokens.routes";

/** The token endpoints (public: the body is the credential) and token checks for services. */
export const tokensRouter = createRouter()
  .openapi(routes.issueToken, handlers.issueToken)
  .openapi(routes.refreshToken, handlers.refreshToken)
  .openapi(routes.revokeToken, handlers.revokeToken)
  .openapi(routes.authorize, handlers.authorize)
  .openapi(routes.validateToken, handlers.validateToken);
