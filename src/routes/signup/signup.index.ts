import { createRouter } from "../../http/router";
import * as handlers from "./signup.handlers";
import * as routes from "./signup.routes";

/** Self-service sign-up and email verification (public), and the caller's email change. */
export const signupRouter = createRouter()
  .openapi(routes.signUp, handlers.signUp)
  .openapi(routes.sendVerification, handlers.sendVerification)
  .openapi(routes.verifyEmail, handlers.verifyEmail)
  .openapi(routes.changeEmail, handlers.changeEmail);
