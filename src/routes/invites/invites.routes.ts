import { createRoute, z } from "@hono/zod-openapi";
import { AcceptInviteSchema, CreateInviteSchema, InviteSchema, UserSchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { TokenResponseSchema } from "../../http/token-response";
import { guard } from "../../middleware/auth";
import { rateLimit } from "../../middleware/rate-limit";

const tags = ["Invites"];
const adminOnly = [guard({ scope: "app", permission: "invites:write" })];

export const createInvite = createRoute({
  method: "post",
  path: "/invites",
  tags,
  summary: "Invite someone to the app with a role",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { body: jsonBody(CreateInviteSchema) },
  responses: {
    201: jsonContent(
      resourceSchema(
        InviteSchema.extend({
          token: z.string().openapi({ example: "inv_tok_…" }),
          invite_url: z.url(),
        }).openapi("NewInvite"),
        "NewInviteResponse",
      ),
      "The invite, with its token and URL (shown once)",
    ),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const listInvites = createRoute({
  method: "get",
  path: "/invites",
  tags,
  summary: "Pending invites (not expired, revoked or used up)",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(InviteSchema, "InviteList"), "A page of invites"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const revokeInvite = createRoute({
  method: "delete",
  path: "/invites/{invite_id}",
  tags,
  summary: "Revoke an invite",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { params: z.object({ invite_id: z.string().min(1).max(64) }) },
  responses: {
    200: jsonContent(resourceSchema(InviteSchema, "InviteResponse"), "The revoked invite"),
    ...errorResponses(401, 403, 404),
  },
});

export const acceptInvite = createRoute({
  method: "post",
  path: "/invites/{invite_token}/accept",
  middleware: [rateLimit("invite-accept")],
  tags,
  summary: "Accept an invite: creates the user and signs them in",
  request: {
    params: z.object({ invite_token: z.string().min(1).max(200) }),
    body: jsonBody(AcceptInviteSchema),
  },
  responses: {
    201: jsonContent(
      TokenResponseSchema.extend({ user: UserSchema }).openapi("AcceptedInvite"),
      "The new user's tokens",
    ),
    ...errorResponses(400, 404, 409, 415),
  },
});
