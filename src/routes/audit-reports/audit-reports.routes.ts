import { createRoute, z } from "@hono/zod-openapi";
import { AuditReportSchema, CreateAuditReportSchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Audit reports"];
const platform = [guard({ scope: "platform" })];
const ReportParams = z.object({ report_id: z.string().min(1).max(64) });
const ReportResponse = resourceSchema(AuditReportSchema, "AuditReportResponse");

export const createReport = createRoute({
  method: "post",
  path: "/admin/audit/reports",
  tags,
  summary: "Create an audit report over a period and filters",
  description: "Counts the matching events now; the download reads them afresh.",
  security: bearerSecurity,
  middleware: platform,
  request: { body: jsonBody(CreateAuditReportSchema) },
  responses: {
    201: jsonContent(ReportResponse, "The report"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const listReports = createRoute({
  method: "get",
  path: "/admin/audit/reports",
  tags,
  summary: "List audit reports, newest first",
  security: bearerSecurity,
  middleware: platform,
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(AuditReportSchema, "AuditReportList"), "A page of reports"),
    ...errorResponses(400, 401, 403),
  },
});

export const getReport = createRoute({
  method: "get",
  path: "/admin/audit/reports/{report_id}",
  tags,
  summary: "One audit report",
  security: bearerSecurity,
  middleware: platform,
  request: { params: ReportParams },
  responses: {
    200: jsonContent(ReportResponse, "The report"),
    ...errorResponses(401, 403, 404),
  },
});

export const downloadReport = createRoute({
  method: "get",
  path: "/admin/audit/reports/{report_id}/download",
  tags,
  summary: "The report's events as CSV or JSON, oldest first (streamed)",
  security: bearerSecurity,
  middleware: platform,
  request: {
    params: ReportParams,
    query: z.object({ format: z.enum(["csv", "json"]).default("csv") }),
  },
  responses: {
    200: {
      description: "The events",
      content: {
        "text/csv": { schema: z.string() },
        "application/json": { schema: z.array(z.record(z.string(), z.unknown())) },
      },
    },
    ...errorResponses(400, 401, 403, 404),
  },
});
