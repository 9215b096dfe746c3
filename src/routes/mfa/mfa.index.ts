import { createRouter } from "../../http/router";
import * as handlers from "./mfa.handlers";
import * as routes from "./mfa.routes";

/** `/v1/users/me/2fa`: the signed-in user's own TOTP second factor. */
export const mfaRouter = createRouter()
  .openapi(routes.mfaStatus, handlers.mfaStatus)
  .openapi(routes.enroll, handlers.enroll)
  .openapi(routes.verify, handlers.verify)
  .openapi(routes.disable, handlers.disable);
