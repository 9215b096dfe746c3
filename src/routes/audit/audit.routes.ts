import { createRoute, z } from "@hono/zod-openapi";
import { AuditLogSchema } from "../../db/schema";
import { bearerSecurity, errorResponses, jsonContent, resourceSchema } from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Audit"];
const can = [guard({ scope: "app", permission: "audit:read" })];

export const listAuditLogs = createRoute({
  method: "get",
  path: "/audit-logs",
  tags,
  summary: "The app's audit trail, newest first",
  security: bearerSecurity,
  middleware: can,
  request: {
    query: PaginationQuery.extend({
      action: z.string().max(100).optional().openapi({ example: "role.assigned" }),
      actor_id: z.string().max(64).optional(),
      target_id: z.string().max(64).optional(),
      from: z.iso.datetime({ offset: true }).optional(),
      to: z.iso.datetime({ offset: true }).optional(),
    }),
  },
  responses: {
    200: jsonContent(listSchema(AuditLogSchema, "AuditLogList"), "A page of events"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getAuditLog = createRoute({
  method: "get",
  path: "/audit-logs/{log_id}",
  tags,
  summary: "One audit event",
  security: bearerSecurity,
  middleware: can,
  request: { params: z.object({ log_id: z.string().min(1).max(64) }) },
  responses: {
    200: jsonContent(resourceSchema(AuditLogSchema, "AuditLogResponse"), "The event"),
    ...errorResponses(401, 403, 404),
  },
});
