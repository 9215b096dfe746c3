import { createRouter } from "../../http/router";
import * as handlers from "./passwords.handlers";
import * as routes from "./passwords.routes";

/** Forgotten passwords (public: the mailed link is the credential) and the caller's own change. */
export const passwordsRouter = createRouter()
  .openapi(routes.forgotPassword, handlers.forgotPassword)
  .openapi(routes.resetPassword, handlers.resetPassword)
  .openapi(routes.changePassword, handlers.changePassword);
