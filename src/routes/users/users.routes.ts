import { createRoute, z } from "@hono/zod-openapi";
import {
  AssignRoleSchema,
  CreateUserSchema,
  SessionSchema,
  UpdateUserSchema,
  UserSchema,
  userStatus,
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

const tags = ["Users"];
const UserParams = z.object({ user_id: z.string().min(1).max(64) });
export const UserResponse = resourceSchema(UserSchema, "UserResponse");
const can = (permission: string) => [guard({ scope: "app", permission })];

export const getMe = createRoute({
  method: "get",
  path: "/users/me",
  tags,
  summary: "The user the access token belongs to",
  security: bearerSecurity,
  middleware: [guard({ scope: "self" })],
  responses: { 200: jsonContent(UserResponse, "The caller"), ...errorResponses(401, 403, 404) },
});

export const createUser = createRoute({
  method: "post",
  path: "/users",
  tags,
  summary: "Create a user",
  security: bearerSecurity,
  middleware: can("users:write"),
  request: { body: jsonBody(CreateUserSchema) },
  responses: {
    201: jsonContent(UserResponse, "The new user"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const listUsers = createRoute({
  method: "get",
  path: "/users",
  tags,
  summary: "List users",
  security: bearerSecurity,
  middleware: can("users:read"),
  request: {
    query: PaginationQuery.extend({
      status: z.enum(userStatus).optional(),
      email: z.string().max(254).optional(),
    }),
  },
  responses: {
    200: jsonContent(listSchema(UserSchema, "UserList"), "A page of users"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getUser = createRoute({
  method: "get",
  path: "/users/{user_id}",
  tags,
  summary: "Get a user by id",
  security: bearerSecurity,
  middleware: can("users:read"),
  request: { params: UserParams },
  responses: { 200: jsonContent(UserResponse, "The user"), ...errorResponses(401, 403, 404) },
});

export const updateUser = createRoute({
  method: "patch",
  path: "/users/{user_id}",
  tags,
  summary: "Update a user",
  description:
    "Setting `status: deactivated` or a new password ends the user's sessions and revokes their tokens.",
  security: bearerSecurity,
  middleware: can("users:write"),
  request: { params: UserParams, body: jsonBody(UpdateUserSchema) },
  responses: {
    200: jsonContent(UserResponse, "The updated user"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const deactivateUser = createRoute({
  method: "delete",
  path: "/users/{user_id}",
  tags,
  summary: "Deactivate a user: no more tokens, live ones revoked",
  security: bearerSecurity,
  middleware: can("users:delete"),
  request: { params: UserParams },
  responses: {
    200: jsonContent(UserResponse, "The deactivated user"),
    ...errorResponses(401, 403, 404),
  },
});

export const assignRole = createRoute({
  method: "post",
  path: "/users/{user_id}/roles",
  tags,
  summary: "Assign a role to a user",
  security: bearerSecurity,
  middleware: can("users:write"),
  request: { params: UserParams, body: jsonBody(AssignRoleSchema) },
  responses: {
    200: jsonContent(UserResponse, "The user with the role"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const removeRole = createRoute({
  method: "delete",
  path: "/users/{user_id}/roles/{role_name}",
  tags,
  summary: "Remove a role from a user",
  security: bearerSecurity,
  middleware: can("users:write"),
  request: { params: UserParams.extend({ role_name: z.string().min(1).max(63) }) },
  responses: {
    200: jsonContent(UserResponse, "The user without the role"),
    ...errorResponses(401, 403, 404),
  },
});

const SessionParams = z.object({ session_id: z.string().min(1).max(64) });

export const listSessions = createRoute({
  method: "get",
  path: "/users/me/sessions",
  tags: ["Sessions"],
  summary: "The caller's active sessions (one per sign-in)",
  security: bearerSecurity,
  middleware: [guard({ scope: "self" })],
  responses: {
    200: jsonContent(
      z
        .object({ data: z.array(SessionSchema), _links: z.object({ self: z.url() }) })
        .openapi("SessionList"),
      "Sessions",
    ),
    ...errorResponses(401, 403),
  },
});

export const endSession = createRoute({
  method: "delete",
  path: "/users/me/sessions/{session_id}",
  tags: ["Sessions"],
  summary: "End one session: its refresh token and access tokens stop working",
  security: bearerSecurity,
  middleware: [guard({ scope: "self" })],
  request: { params: SessionParams },
  responses: { 204: { description: "Ended" }, ...errorResponses(401, 403, 404) },
});

export const endOtherSessions = createRoute({
  method: "delete",
  path: "/users/me/sessions",
  tags: ["Sessions"],
  summary: "End every session but the current one",
  security: bearerSecurity,
  middleware: [guard({ scope: "self" })],
  responses: {
    200: jsonContent(
      z.object({ data: z.object({ ended: z.number().int() }) }).openapi("SessionsEnded"),
      "How many ended",
    ),
    ...errorResponses(401, 403),
  },
});
