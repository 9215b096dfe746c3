import { createRoute, z } from "@hono/zod-openapi";
import { ApiKeySchema, CreateApiKeySchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["API keys"];
const KeyParams = z.object({ key_id: z.string().min(1).max(64) });
const ApiKeyResponse = resourceSchema(ApiKeySchema, "ApiKeyResponse");
const can = (permission: string) => [guard({ scope: "app", permission })];

export const createApiKey = createRoute({
  method: "post",
  path: "/api-keys",
  tags,
  summary: "Create an API key (the secret is in this answer only)",
  description: "Use it as `Authorization: Bearer pk_…` or `X-API-Key: pk_…`.",
  security: bearerSecurity,
  middleware: can("api-keys:write"),
  request: { body: jsonBody(CreateApiKeySchema) },
  responses: {
    201: jsonContent(
      resourceSchema(
        ApiKeySchema.extend({ key: z.string().openapi({ example: "pk_…" }) }).openapi("NewApiKey"),
        "NewApiKeyResponse",
      ),
      "The key, with its secret",
    ),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const listApiKeys = createRoute({
  method: "get",
  path: "/api-keys",
  tags,
  summary: "List API keys (without secrets)",
  security: bearerSecurity,
  middleware: can("api-keys:read"),
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(ApiKeySchema, "ApiKeyList"), "A page of keys"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getApiKey = createRoute({
  method: "get",
  path: "/api-keys/{key_id}",
  tags,
  summary: "Get an API key",
  security: bearerSecurity,
  middleware: can("api-keys:read"),
  request: { params: KeyParams },
  responses: { 200: jsonContent(ApiKeyResponse, "The key"), ...errorResponses(401, 403, 404) },
});

export const revokeApiKey = createRoute({
  method: "delete",
  path: "/api-keys/{key_id}",
  tags,
  summary: "Revoke an API key, at once",
  security: bearerSecurity,
  middleware: can("api-keys:delete"),
  request: { params: KeyParams },
  responses: {
    200: jsonContent(ApiKeyResponse, "The revoked key"),
    ...errorResponses(401, 403, 404),
  },
});
