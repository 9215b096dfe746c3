import { createRoute, z } from "@hono/zod-openapi";
import { jsonContent } from "../../http/openapi";
import { rateLimit } from "../../middleware/rate-limit";

const checkStatus = z.enum(["ok", "error"]);

export const HealthSchema = z
  .object({
    status: checkStatus.openapi({ description: "`ok` when every check passes" }),
    timestamp: z.iso.datetime().openapi({ example: "2026-11-23T10:00:00.000Z" }),
    checks: z.object({
      db: checkStatus.openapi({ description: "The database answers a query" }),
      cache: checkStatus.openapi({ description: "The cache (Upstash Redis or in-memory) answers" }),
    }),
  })
  .openapi("Health");

export const health = createRoute({
  method: "get",
  path: "/health",
  middleware: [rateLimit("unlimited")],
  tags: ["Health"],
  summary: "Liveness and dependency checks",
  responses: {
    200: jsonContent(HealthSchema, "Every dependency answers"),
    503: jsonContent(HealthSchema, "At least one dependency is down"),
  },
});
