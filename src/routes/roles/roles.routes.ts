import { createRoute, z } from "@hono/zod-openapi";
import { CreateRoleSchema, RoleSchema, UpdateRoleSchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Roles"];
const RoleParams = z.object({ role_name: z.string().min(1).max(63) });
const RoleResponse = resourceSchema(RoleSchema, "RoleResponse");
const can = (permission: string) => [guard({ scope: "app", permission })];

export const createRole = createRoute({
  method: "post",
  path: "/roles",
  tags,
  summary: "Create a role",
  security: bearerSecurity,
  middleware: can("roles:write"),
  request: { body: jsonBody(CreateRoleSchema) },
  responses: {
    201: jsonContent(RoleResponse, "The new role"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const listRoles = createRoute({
  method: "get",
  path: "/roles",
  tags,
  summary: "List roles",
  security: bearerSecurity,
  middleware: can("roles:read"),
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(RoleSchema, "RoleList"), "A page of roles"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getRole = createRoute({
  method: "get",
  path: "/roles/{role_name}",
  tags,
  summary: "Get a role by name",
  security: bearerSecurity,
  middleware: can("roles:read"),
  request: { params: RoleParams },
  responses: { 200: jsonContent(RoleResponse, "The role"), ...errorResponses(401, 403, 404) },
});

export const updateRole = createRoute({
  method: "patch",
  path: "/roles/{role_name}",
  tags,
  summary: "Update a role, including its permissions",
  description: "Tokens carry permissions: a change applies to tokens issued after it.",
  security: bearerSecurity,
  middleware: can("roles:write"),
  request: { params: RoleParams, body: jsonBody(UpdateRoleSchema) },
  responses: {
    200: jsonContent(RoleResponse, "The updated role"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const deleteRole = createRoute({
  method: "delete",
  path: "/roles/{role_name}",
  tags,
  summary: "Delete a role (and its assignments)",
  security: bearerSecurity,
  middleware: can("roles:delete"),
  request: { params: RoleParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

export const listPermissions = createRoute({
  method: "get",
  path: "/permissions",
  tags: ["Permissions"],
  summary: "The built-in permission catalogue",
  description: "Roles may also hold custom `resource:action` permissions; `*` matches any part.",
  security: bearerSecurity,
  middleware: can("permissions:read"),
  responses: {
    200: jsonContent(
      z
        .object({
          data: z.array(z.object({ name: z.string(), description: z.string() })),
          _links: z.object({ self: z.url() }),
        })
        .openapi("PermissionList"),
      "The catalogue",
    ),
    ...errorResponses(401, 403, 404),
  },
});
