import { createRoute, z } from "@hono/zod-openapi";
import {
  CreateOAuthClientSchema,
  OAuthClientSchema,
  UpdateOAuthClientSchema,
} from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["OAuth clients"];
const can = (permission: string) => [guard({ scope: "app", permission })];
const ClientParams = z.object({ client_id: z.string().min(1).max(64) });
const ClientResponse = resourceSchema(OAuthClientSchema, "OAuthClientResponse");
const WithSecret = resourceSchema(
  OAuthClientSchema.extend({
    client_secret: z
      .string()
      .optional()
      .openapi({ description: "Confidential clients; shown once" }),
  }),
  "OAuthClientWithSecret",
);

export const createClient = createRoute({
  method: "post",
  path: "/oauth/clients",
  tags,
  summary: "Register an OAuth client (authorization code + PKCE)",
  description:
    "`redirect_uris` are matched exactly. `scopes` are Heimdall permissions, plus `openid`, `email` and `profile`. A confidential client's `client_secret` is in this answer only.",
  security: bearerSecurity,
  middleware: can("oauth-clients:write"),
  request: { body: jsonBody(CreateOAuthClientSchema) },
  responses: {
    201: jsonContent(WithSecret, "The client"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const listClients = createRoute({
  method: "get",
  path: "/oauth/clients",
  tags,
  summary: "List OAuth clients",
  security: bearerSecurity,
  middleware: can("oauth-clients:read"),
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(OAuthClientSchema, "OAuthClientList"), "A page of clients"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getClient = createRoute({
  method: "get",
  path: "/oauth/clients/{client_id}",
  tags,
  summary: "One OAuth client",
  security: bearerSecurity,
  middleware: can("oauth-clients:read"),
  request: { params: ClientParams },
  responses: { 200: jsonContent(ClientResponse, "The client"), ...errorResponses(401, 403, 404) },
});

export const updateClient = createRoute({
  method: "patch",
  path: "/oauth/clients/{client_id}",
  tags,
  summary: "Rename a client, change its redirect URIs or scopes",
  security: bearerSecurity,
  middleware: can("oauth-clients:write"),
  request: { params: ClientParams, body: jsonBody(UpdateOAuthClientSchema) },
  responses: {
    200: jsonContent(ClientResponse, "The client"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const rotateSecret = createRoute({
  method: "post",
  path: "/oauth/clients/{client_id}/rotate-secret",
  tags,
  summary: "A new client secret; the previous one works for one more hour",
  security: bearerSecurity,
  middleware: can("oauth-clients:write"),
  request: { params: ClientParams },
  responses: {
    200: jsonContent(WithSecret, "The client and its new secret"),
    ...errorResponses(401, 403, 404, 409),
  },
});

export const deleteClient = createRoute({
  method: "delete",
  path: "/oauth/clients/{client_id}",
  tags,
  summary: "Delete an OAuth client (its grants and codes go with it)",
  security: bearerSecurity,
  middleware: can("oauth-clients:write"),
  request: { params: ClientParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});
