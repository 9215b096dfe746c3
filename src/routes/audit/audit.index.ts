import { createRouter } from "../../http/router";
import * as handlers from "./audit.handlers";
import * as routes from "./audit.routes";

/** An app's audit log: mounted under `/v1/apps/:app_name` and at `/v1`. */
export const auditRouter = createRouter()
  .openapi(routes.listAuditLogs, handlers.listAuditLogs)
  .openapi(routes.getAuditLog, handlers.getAuditLog);
