import { createRouter } from "../../http/router";
import * as handlers from "./audit-reports.handlers";
import * as routes from "./audit-reports.routes";

/** `/v1/admin/audit/reports`: the platform admin's saved audit queries and their downloads. */
export const auditReportsRouter = createRouter()
  .openapi(routes.createReport, handlers.createReport)
  .openapi(routes.listReports, handlers.listReports)
  .openapi(routes.getReport, handlers.getReport)
  .openapi(routes.downloadReport, handlers.downloadReport);
