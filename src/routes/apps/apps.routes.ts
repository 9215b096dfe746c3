import { createRoute, z } from "@hono/zod-openapi";
import { AppSchema, CreateAppSchema, UpdateAppSchema } from "../../db/schema";
import { AppSettingsChangeSchema, AppSettingsSchema } from "../../db/schema/settings";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Apps"];
const platform = [guard({ scope: "platform" })];
const AppParams = z.object({ app_name: z.string().min(1).max(63) });
export const AppResponse = resourceSchema(AppSchema, "AppResponse");

export const createApp = createRoute({
  method: "post",
  path: "/apps",
  tags,
  summary: "Create an app (tenant)",
  security: bearerSecurity,
  middleware: platform,
  request: { body: jsonBody(CreateAppSchema) },
  responses: {
    201: jsonContent(AppResponse, "The new app"),
    ...errorResponses(400, 401, 403, 409, 415),
  },
});

export const listApps = createRoute({
  method: "get",
  path: "/apps",
  tags,
  summary: "List apps",
  security: bearerSecurity,
  middleware: platform,
  request: {
    query: PaginationQuery.extend({ status: z.enum(["active", "archived"]).optional() }),
  },
  responses: {
    200: jsonContent(listSchema(AppSchema, "AppList"), "A page of apps"),
    ...errorResponses(400, 401, 403),
  },
});

export const getApp = createRoute({
  method: "get",
  path: "/apps/{app_name}",
  tags,
  summary: "Get an app by name",
  security: bearerSecurity,
  middleware: platform,
  request: { params: AppParams },
  responses: { 200: jsonContent(AppResponse, "The app"), ...errorResponses(401, 403, 404) },
});

export const updateApp = createRoute({
  method: "patch",
  path: "/apps/{app_name}",
  tags,
  summary: "Update an app",
  security: bearerSecurity,
  middleware: platform,
  request: { params: AppParams, body: jsonBody(UpdateAppSchema) },
  responses: {
    200: jsonContent(AppResponse, "The updated app"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const archiveApp = createRoute({
  method: "delete",
  path: "/apps/{app_name}",
  tags,
  summary: "Archive an app: it issues nothing more and its tokens stop authorizing",
  security: bearerSecurity,
  middleware: platform,
  request: { params: AppParams },
  responses: {
    200: jsonContent(AppResponse, "The archived app"),
    ...errorResponses(401, 403, 404),
  },
});

const SettingsResponse = resourceSchema(AppSettingsSchema, "AppSettingsResponse");
const settingsGuard = (permission: string) => [guard({ scope: "app", permission })];

export const getSettings = createRoute({
  method: "get",
  path: "/settings",
  tags: ["Settings"],
  summary: "The app's settings, defaults included",
  security: bearerSecurity,
  middleware: settingsGuard("settings:read"),
  responses: { 200: jsonContent(SettingsResponse, "Settings"), ...errorResponses(401, 403, 404) },
});

export const updateSettings = createRoute({
  method: "patch",
  path: "/settings",
  tags: ["Settings"],
  summary: "Change some of the app's settings",
  description:
    "Top-level fields given replace the current ones; a new `signing_algorithm` rotates the app's signing key.",
  security: bearerSecurity,
  middleware: settingsGuard("settings:write"),
  request: { body: jsonBody(AppSettingsChangeSchema) },
  responses: {
    200: jsonContent(SettingsResponse, "Settings"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const rotateKeys = createRoute({
  method: "post",
  path: "/keys/rotate",
  tags: ["Keys"],
  summary: "Rotate the app's signing key",
  description:
    "Issues a new key; the previous ones stay in the JWKS until every token they signed has expired.",
  security: bearerSecurity,
  middleware: settingsGuard("keys:write"),
  responses: {
    201: jsonContent(
      resourceSchema(
        z.object({ kid: z.string(), alg: z.string() }).openapi("SigningKey"),
        "SigningKeyResponse",
      ),
      "The new key",
    ),
    ...errorResponses(401, 403, 404),
  },
});
