import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, jsonContent } from "../../http/openapi";

export const MailboxMessageSchema = z
  .object({
    id: z.string().openapi({ example: "eml_01JD…" }),
    app: z.string().openapi({ example: "acme" }),
    kind: z.string().openapi({ example: "email_verification" }),
    to: z.string(),
    from_name: z.string(),
    subject: z.string(),
    text: z.string().nullable(),
    html: z.string().nullable(),
    status: z.enum(["pending", "sent", "failed"]),
    attempts: z.number().int(),
    last_error: z.string().nullable(),
    created_at: z.iso.datetime(),
    sent_at: z.iso.datetime().nullable(),
  })
  .openapi("MailboxMessage");

export const listMailbox = createRoute({
  method: "get",
  path: "/dev/mailbox",
  tags: ["Development"],
  summary: "The mail Heimdall queued, bodies included (development only)",
  description:
    "Served only when `DEV_MAILBOX` is on (by default with `APP_ENV=development`); Heimdall " +
    "refuses to start with it in production. No credentials: it is for a developer's machine.",
  request: {
    query: z.object({
      app: z.string().min(1).max(100).optional().openapi({ description: "An app's name" }),
      to: z.string().min(1).max(320).optional().openapi({ description: "The recipient" }),
      limit: z.coerce.number().int().min(1).max(100).default(20),
    }),
  },
  responses: {
    200: jsonContent(
      z.object({ data: z.array(MailboxMessageSchema) }).openapi("MailboxMessageList"),
      "The latest messages, newest first",
    ),
    ...errorResponses(400),
  },
});
