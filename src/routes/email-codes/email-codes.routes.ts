import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, jsonContent, jsonOrForm } from "../../http/openapi";
import { rateLimit } from "../../middleware/rate-limit";

const AppParams = z.object({ app_name: z.string().min(1).max(63) });

export const startEmailSignIn = createRoute({
  method: "post",
  path: "/apps/{app_name}/otp/start",
  middleware: [rateLimit("sign-in")],
  tags: ["Tokens"],
  summary: "Mail a sign-in code and link",
  description:
    "Answers 202 whether or not an account has this address (no enumeration). The mail carries a 6-digit code and a link, both good once for 10 minutes; a newer request replaces them. Exchange either at the token endpoint with `grant_type=email_otp`: `email` and `code`, or `email_token` (the link's `otl_…` token).",
  request: {
    params: AppParams,
    body: jsonOrForm(
      z
        .object({
          email: z.email().max(254).openapi({ example: "jane@acme.co" }),
          channel: z
            .enum(["code", "link"])
            .default("code")
            .openapi({ description: "What the user will use; the mail carries both" }),
        })
        .openapi("StartEmailSignIn"),
    ),
  },
  responses: {
    202: jsonContent(
      z.object({ status: z.literal("code_sent") }).openapi("CodeSent"),
      "Sent, if the account exists",
    ),
    ...errorResponses(400, 403, 404, 415, 429),
  },
});
