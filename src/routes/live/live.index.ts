import { createRouter } from "../../http/router";
import * as handlers from "./live.handlers";
import * as routes from "./live.routes";

/** `/v1/ws/ticket`; the socket itself is served by the runtime's live room host. */
export const liveRouter = createRouter().openapi(routes.createTicket, handlers.createTicket);
