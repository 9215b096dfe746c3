import { createRouter } from "../../http/router";
import * as handlers from "./invites.handlers";
import * as routes from "./invites.routes";

/** Invites of an app: mounted under `/v1/apps/:app_name` only, for the platform admin. */
export const invitesRouter = createRouter()
  .openapi(routes.createInvite, handlers.createInvite)
  .openapi(routes.listInvites, handlers.listInvites)
  .openapi(routes.revokeInvite, handlers.revokeInvite);

/** `POST /v1/invites/{invite_token}/accept`: public, the token is the credential. */
export const inviteAcceptRouter = createRouter().openapi(
  routes.acceptInvite,
  handlers.acceptInvite,
);
