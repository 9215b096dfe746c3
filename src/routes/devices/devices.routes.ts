import { createRoute, z } from "@hono/zod-openapi";
import { CreateDeviceSchema, DeviceSchema, UpdateDeviceSchema } from "../../db/schema";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
} from "../../http/openapi";
import { listSchema, PaginationQuery } from "../../http/pagination";
import { guard } from "../../middleware/auth";

const tags = ["Devices"];
const DeviceParams = z.object({ device_id: z.string().min(1).max(64) });
const DeviceResponse = resourceSchema(DeviceSchema, "DeviceResponse");
const WithSecret = resourceSchema(
  DeviceSchema.extend({
    secret: z.string().openapi({
      description: "The device's ingest secret (`dk_…`), shown once",
      example: "dk_…",
    }),
  }).openapi("DeviceWithSecret"),
  "DeviceWithSecretResponse",
);
const can = (permission: string) => [guard({ scope: "app", permission })];

export const createDevice = createRoute({
  method: "post",
  path: "/devices",
  tags,
  summary: "Register a device (its ingest secret is in this answer only)",
  security: bearerSecurity,
  middleware: can("devices:write"),
  request: { body: jsonBody(CreateDeviceSchema) },
  responses: {
    201: jsonContent(WithSecret, "The device and its secret"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const listDevices = createRoute({
  method: "get",
  path: "/devices",
  tags,
  summary: "List devices",
  security: bearerSecurity,
  middleware: can("devices:read"),
  request: { query: PaginationQuery },
  responses: {
    200: jsonContent(listSchema(DeviceSchema, "DeviceList"), "A page of devices"),
    ...errorResponses(400, 401, 403, 404),
  },
});

export const getDevice = createRoute({
  method: "get",
  path: "/devices/{device_id}",
  tags,
  summary: "Get a device",
  security: bearerSecurity,
  middleware: can("devices:read"),
  request: { params: DeviceParams },
  responses: { 200: jsonContent(DeviceResponse, "The device"), ...errorResponses(401, 403, 404) },
});

export const updateDevice = createRoute({
  method: "patch",
  path: "/devices/{device_id}",
  tags,
  summary: "Update a device",
  security: bearerSecurity,
  middleware: can("devices:write"),
  request: { params: DeviceParams, body: jsonBody(UpdateDeviceSchema) },
  responses: {
    200: jsonContent(DeviceResponse, "The device"),
    ...errorResponses(400, 401, 403, 404, 409, 415),
  },
});

export const rotateSecret = createRoute({
  method: "post",
  path: "/devices/{device_id}/secret",
  tags,
  summary: "Issue a new ingest secret; the old one stops working",
  security: bearerSecurity,
  middleware: can("devices:write"),
  request: { params: DeviceParams },
  responses: { 200: jsonContent(WithSecret, "The new secret"), ...errorResponses(401, 403, 404) },
});

export const deleteDevice = createRoute({
  method: "delete",
  path: "/devices/{device_id}",
  tags,
  summary: "Delete a device and its positions",
  security: bearerSecurity,
  middleware: can("devices:delete"),
  request: { params: DeviceParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});
