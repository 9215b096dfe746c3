import { createRoute, z } from "@hono/zod-openapi";
import { CreateCredentialSchema, CredentialSchema, UpdateCredentialSchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Service credentials"];
const CredentialParams = z.object({ credential_id: z.string().min(1).max(64) });
const WithSecret = CredentialSchema.extend({
  client_secret: z.string().openapi({ example: "sk_live_…" }),
}).openapi("ServiceCredentialWithSecret");
const adminOnly = [guard({ scope: "app", permission: "credentials:write" })];

export const createCredential = createRoute({
  method: "post",
  path: "/credentials",
  tags,
  summary: "Create service credentials (the secret is in this answer only)",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { body: jsonBody(CreateCredentialSchema) },
  responses: {
    201: jsonContent(resourceSchema(WithSecret, "NewServiceCredentialResponse"), "The credential"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const listCredentials = createRoute({
  method: "get",
  path: "/credentials",
  tags,
  summary: "List service credentials (without secrets)",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(CredentialSchema, "ServiceCredentialList"), "A page"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const updateCredential = createRoute({
  method: "patch",
  path: "/credentials/{credential_id}",
  tags,
  summary: "Update credentials, e.g. rotate the secret",
  description:
    "With `rotate_secret: true` the answer carries the new `client_secret`; the old one keeps working for `grace_period_seconds` (default 3600).",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { params: CredentialParams, body: jsonBody(UpdateCredentialSchema) },
  responses: {
    200: jsonContent(
      resourceSchema(
        CredentialSchema.extend({ client_secret: z.string().optional() }),
        "ServiceCredentialResponse",
      ),
      "The credential",
    ),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const revokeCredential = createRoute({
  method: "delete",
  path: "/credentials/{credential_id}",
  tags,
  summary: "Revoke service credentials; their live tokens stop working",
  security: bearerSecurity,
  middleware: adminOnly,
  request: { params: CredentialParams },
  responses: {
    200: jsonContent(resourceSchema(CredentialSchema, "RevokedServiceCredential"), "Revoked"),
    ...errorResponses(401, 403, 404),
  },
});
