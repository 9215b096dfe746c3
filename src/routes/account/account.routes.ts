import { createRoute, z } from "@hono/zod-openapi";
import { AuditLogSchema, OAuthGrantSchema } from "../../db/schema";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Account"];
const self = [guard({ scope: "self" })];

export const activity = createRoute({
  method: "get",
  path: "/users/me/audit",
  tags,
  summary: "The caller's own activity: events by them or about them, newest first",
  security: bearerSecurity,
  middleware: self,
  request: {
    query: PaginationQuery.extend({
      action: z.string().max(100).optional().openapi({ example: "auth.login.succeeded" }),
      from: z.iso.datetime({ offset: true }).optional(),
      to: z.iso.datetime({ offset: true }).optional(),
    }),
  },
  responses: {
    200: jsonContent(listSchema(AuditLogSchema, "ActivityList"), "A page of events"),
    ...errorResponses(400, 401, 403),
  },
});

export const exportData = createRoute({
  method: "get",
  path: "/user/export",
  tags,
  summary: "Everything stored about the caller, as one JSON document (GDPR), streamed",
  description:
    "Profile, sessions, API keys they created (metadata), audit events by or about them, and the devices they registered with all their positions.",
  security: bearerSecurity,
  middleware: self,
  responses: {
    200: {
      description: "The export",
      content: {
        "application/json": { schema: z.record(z.string(), z.unknown()) },
      },
    },
    ...errorResponses(401, 403),
  },
});

export const erase = createRoute({
  method: "delete",
  path: "/users/me",
  tags,
  summary: "Erase the caller's personal data and positions (GDPR)",
  description:
    "Deletes the profile, sessions, 2FA, registered devices and their positions, and revokes every token. Audit events stay, with the user replaced by a pseudonym and their addresses and email removed. Needs the password.",
  security: bearerSecurity,
  middleware: self,
  request: {
    body: jsonBody(
      z
        .object({ password: z.string().min(1).max(1024) })
        .strict()
        .openapi("Erase"),
    ),
  },
  responses: {
    200: jsonContent(
      z
        .object({
          data: z.object({
            erased: z.literal(true),
            devices: z.number().int(),
            positions: z.number().int(),
          }),
        })
        .openapi("Erased"),
      "Erased",
    ),
    ...errorResponses(400, 401, 403, 415),
  },
});

export const listGrants = createRoute({
  method: "get",
  path: "/users/me/grants",
  tags,
  summary: "The OAuth clients the caller has allowed, and what",
  security: bearerSecurity,
  middleware: self,
  responses: {
    200: jsonContent(
      z.object({ data: z.array(OAuthGrantSchema) }).openapi("OAuthGrantList"),
      "The grants",
    ),
    ...errorResponses(401, 403),
  },
});

export const revokeGrant = createRoute({
  method: "delete",
  path: "/users/me/grants/{grant_id}",
  tags,
  summary: "Withdraw a grant: the client's sessions end and its tokens stop working",
  security: bearerSecurity,
  middleware: self,
  request: { params: z.object({ grant_id: z.string().min(1).max(64) }) },
  responses: { 204: { description: "Withdrawn" }, ...errorResponses(401, 403, 404) },
});
