import { createRoute, z } from "@hono/zod-openapi";
import { CreatePlatformSchema, PlatformSchema, UpdatePlatformSchema } from "../../db/schema";
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

const tags = ["Authentication platforms"];
const PlatformParams = z.object({ platform_id: z.string().min(1).max(64) });
const PlatformResponse = resourceSchema(PlatformSchema, "PlatformResponse");
const can = (permission: string) => [guard({ scope: "app", permission })];

export const createPlatform = createRoute({
  method: "post",
  path: "/platforms",
  tags,
  summary: "Add an OpenID Connect provider the app's users may sign in with",
  description:
    "`client_secret` is stored encrypted and never answered. Register " +
    "`{PUBLIC_URL}/v1/apps/{app_name}/platforms/{name}/callback` as the redirect URI at the provider.",
  security: bearerSecurity,
  middleware: can("platforms:write"),
  request: { body: jsonBody(CreatePlatformSchema) },
  responses: {
    201: jsonContent(PlatformResponse, "The platform"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const listPlatforms = createRoute({
  method: "get",
  path: "/platforms",
  tags,
  summary: "List the app's platforms",
  security: bearerSecurity,
  middleware: can("platforms:read"),
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(PlatformSchema, "PlatformList"), "A page of platforms"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getPlatform = createRoute({
  method: "get",
  path: "/platforms/{platform_id}",
  tags,
  summary: "Get a platform",
  security: bearerSecurity,
  middleware: can("platforms:read"),
  request: { params: PlatformParams },
  responses: {
    200: jsonContent(PlatformResponse, "The platform"),
    ...errorResponses(401, 403, 404),
  },
});

export const updatePlatform = createRoute({
  method: "patch",
  path: "/platforms/{platform_id}",
  tags,
  summary: "Update a platform (only the fields sent change)",
  security: bearerSecurity,
  middleware: can("platforms:write"),
  request: { params: PlatformParams, body: jsonBody(UpdatePlatformSchema) },
  responses: {
    200: jsonContent(PlatformResponse, "The platform"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const deletePlatform = createRoute({
  method: "delete",
  path: "/platforms/{platform_id}",
  tags,
  summary: "Delete a platform; users who signed in with it stay, unlinked",
  security: bearerSecurity,
  middleware: can("platforms:write"),
  request: { params: PlatformParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

const LoginParams = z.object({
  app_name: z.string().min(1).max(63),
  name: z.string().min(1).max(63),
});

export const startLogin = createRoute({
  method: "get",
  path: "/apps/{app_name}/platforms/{name}/login",
  middleware: [rateLimit("sign-in")],
  tags,
  summary: "Sign in with a platform: redirects to the identity provider",
  description:
    "Public. Answers a redirect to the provider's authorization endpoint (authorization code, " +
    "PKCE S256, random state and nonce); the provider sends the browser back to `…/callback`.",
  request: { params: LoginParams },
  responses: {
    302: {
      description: "To the identity provider",
      headers: z.object({ Location: z.url() }),
    },
    ...errorResponses(403, 404, 503),
  },
});

export const startLink = createRoute({
  method: "post",
  path: "/users/me/platforms/{name}/link",
  tags,
  summary: "Link a platform to the signed-in user's own account",
  description:
    "Answers the provider's authorization URL; after the sign-in there, the callback links that provider account to the caller (never to another user) and answers tokens. The only way an existing account is linked to a platform the platform admin has not marked `trusted`.",
  security: bearerSecurity,
  middleware: [guard({ scope: "self" })],
  request: { params: z.object({ name: z.string().min(1).max(63) }) },
  responses: {
    200: jsonContent(
      z.object({ data: z.object({ authorization_url: z.url() }) }).openapi("PlatformLinkStart"),
      "Where to send the user",
    ),
    ...errorResponses(401, 403, 404, 503),
  },
});

export const callback = createRoute({
  method: "get",
  path: "/apps/{app_name}/platforms/{name}/callback",
  middleware: [rateLimit("sign-in")],
  tags,
  summary: "Where the identity provider sends the user back: answers Heimdall's tokens",
  description:
    "Public. Spends the `state` once, exchanges the `code` with the PKCE verifier, validates the " +
    "ID token and signs the user in: the user linked to the provider account; else, when the " +
    "provider says `email_verified: true`, the app's user with that email (linked now) or a new " +
    "user (no password, no role). An account seen the first time with an unverified email is " +
    "refused (403). A user with 2FA on gets `mfa_required`, completed at the token endpoint.",
  request: {
    params: LoginParams,
    query: z.object({
      // Optional here so an unknown app or platform answers 404 first; a missing state is then
      // refused like an unknown one (400 invalid_request).
      state: z.string().max(1024).optional(),
      code: z.string().min(1).max(4096).optional(),
      iss: z.string().max(2048).optional(),
      error: z.string().max(256).optional(),
      error_description: z.string().max(2048).optional(),
    }),
  },
  responses: {
    200: jsonContent(TokenResponseSchema, "Heimdall's tokens for the user"),
    ...errorResponses(400, 401, 403, 404, 409, 422, 503),
  },
});
