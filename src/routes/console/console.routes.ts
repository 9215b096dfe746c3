import { createRoute, z } from "@hono/zod-openapi";
import { jsonContent } from "../../http/openapi";

export const ConsoleConfigSchema = z
  .object({
    data: z.object({
      map_tile_url: z.string().nullable().openapi({
        description: "XYZ tile template, or null to draw on a plain background",
        example: "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
      }),
      map_attribution: z.string().nullable(),
      dev_mailbox: z.boolean().openapi({
        description:
          "Whether `GET /v1/dev/mailbox` lists the mail this server queued (development only)",
      }),
    }),
  })
  .openapi("ConsoleConfig");

export const consoleConfig = createRoute({
  method: "get",
  path: "/console/config",
  tags: ["Console"],
  summary:
    "Settings the browser console at `/` reads at start (map tiles, the development mailbox)",
  responses: { 200: jsonContent(ConsoleConfigSchema, "The console's settings") },
});
