import { createRouter } from "../../http/router";
import * as handlers from "./email-codes.handlers";
import * as routes from "./email-codes.routes";

/** Sign-in by mailed code or link (public); the token endpoint's `email_otp` grant completes it. */
export const emailCodesRouter = createRouter().openapi(
  routes.startEmailSignIn,
  handlers.startEmailSignIn,
);
