import { createRouter } from "../../http/router";
import * as handlers from "./dev-mailbox.handlers";
import * as routes from "./dev-mailbox.routes";

/** `GET /v1/dev/mailbox`: mounted only when `devMailboxEnabled(config)`. */
export const devMailboxRouter = createRouter().openapi(routes.listMailbox, handlers.listMailbox);
