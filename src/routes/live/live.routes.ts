import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonContent } from "../../http/openapi";
import { guard } from "../../middleware/auth";

export const createTicket = createRoute({
  method: "post",
  path: "/ws/ticket",
  tags: ["Live"],
  summary: "A single-use ticket to open the live socket (`/v1/ws?ticket=…`), valid 60 s",
  description:
    "Browsers cannot set headers on a WebSocket: ask for a ticket with your token, then connect with it. Needs `gps:read`.",
  security: bearerSecurity,
  middleware: [guard({ scope: "app", permission: "gps:read" })],
  responses: {
    201: jsonContent(
      z
        .object({
          data: z.object({
            ticket: z.string(),
            expires_at: z.iso.datetime(),
            url: z.string().openapi({ example: "wss://id.example.com/v1/ws?ticket=…" }),
          }),
        })
        .openapi("SocketTicket"),
      "The ticket",
    ),
    ...errorResponses(401, 403),
  },
});
