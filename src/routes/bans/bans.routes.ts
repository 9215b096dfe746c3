import { createRoute, z } from "@hono/zod-openapi";
import { BanSchema, CreateBanSchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Bans"];
const platform = [guard({ scope: "platform" })];
const BanParams = z.object({ ban_id: z.string().min(1).max(64) });
const BanResponse = resourceSchema(BanSchema, "BanResponse");

export const createBan = createRoute({
  method: "post",
  path: "/admin/bans",
  tags,
  summary: "Ban a user, an IP address or a CIDR range",
  description:
    "A banned user gets no tokens and their live tokens stop working; a banned address gets 403 on every request.",
  security: bearerSecurity,
  middleware: platform,
  request: { body: jsonBody(CreateBanSchema) },
  responses: {
    201: jsonContent(BanResponse, "The ban"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const listBans = createRoute({
  method: "get",
  path: "/admin/bans",
  tags,
  summary: "List bans",
  security: bearerSecurity,
  middleware: platform,
  request: {
    query: PaginationQuery.extend({
      active: z
        .enum(["true", "false"])
        .optional()
        .transform((value) => value === "true"),
      kind: z.enum(["user", "ip"]).optional(),
    }),
  },
  responses: {
    200: jsonContent(listSchema(BanSchema, "BanList"), "A page of bans"),
    ...errorResponses(400, 401, 403),
  },
});

export const getBan = createRoute({
  method: "get",
  path: "/admin/bans/{ban_id}",
  tags,
  summary: "Get a ban",
  security: bearerSecurity,
  middleware: platform,
  request: { params: BanParams },
  responses: { 200: jsonContent(BanResponse, "The ban"), ...errorResponses(401, 403, 404) },
});

export const liftBan = createRoute({
  method: "delete",
  path: "/admin/bans/{ban_id}",
  tags,
  summary: "Lift a ban",
  security: bearerSecurity,
  middleware: platform,
  request: { params: BanParams },
  responses: { 200: jsonContent(BanResponse, "The lifted ban"), ...errorResponses(401, 403, 404) },
});
