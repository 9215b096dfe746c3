import { createRoute, z } from "@hono/zod-openapi";
import { jsonContent } from "../../http/openapi";

export const ApiInfoSchema = z
  .object({
    data: z.object({
      name: z.string().openapi({ example: "heimdall" }),
      version: z.string().openapi({ example: "0.1.0" }),
      api_version: z.literal("v1"),
    }),
    _links: z.object({
      self: z.url(),
      health: z.url(),
      openapi: z.url(),
      docs: z.url(),
    }),
  })
  .openapi("ApiInfo");

export const apiInfo = createRoute({
  method: "get",
  path: "/",
  tags: ["Info"],
  summary: "API version and entry links",
  responses: { 200: jsonContent(ApiInfoSchema, "Version information") },
});
