import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonContent, jsonOrForm } from "../../http/openapi";
import { guard } from "../../middleware/auth";
import { rateLimit } from "../../middleware/rate-limit";

const AppParams = z.object({ app_name: z.string().min(1).max(63) });

const tags = ["Passwords"];
const password = z.string().min(1).max(1024);

export const forgotPassword = createRoute({
  method: "post",
  path: "/apps/{app_name}/password/forgot",
  middleware: [rateLimit("sign-in")],
  tags,
  summary: "Mail a password reset link",
  description:
    "Answers 202 whether or not an account has this address (no enumeration); the mail goes only to an existing account, at most a few per address in 15 minutes. The link opens `/v1/apps/{app_name}/pages/reset-password` and works once, for 30 minutes; a newer request replaces it.",
  request: {
    params: AppParams,
    body: jsonOrForm(
      z
        .object({ email: z.email().max(254).openapi({ example: "jane@acme.co" }) })
        .openapi("ForgotPassword"),
    ),
  },
  responses: {
    202: jsonContent(
      z.object({ status: z.literal("reset_sent") }).openapi("ResetSent"),
      "Sent, if the account exists",
    ),
    ...errorResponses(400, 403, 404, 415, 429),
  },
});

export const resetPassword = createRoute({
  method: "post",
  path: "/apps/{app_name}/password/reset",
  middleware: [rateLimit("sign-in")],
  tags,
  summary: "Set a new password with a mailed reset link",
  description:
    "Ends every session of the user and marks the address verified. It does not sign in: with 2FA on, the next sign-in still asks for the code. Wrong tokens count towards the lockout of the caller's IP.",
  request: {
    params: AppParams,
    body: jsonOrForm(
      z
        .object({
          token: z.string().min(1).max(200).openapi({ example: "pwr_…" }),
          password,
        })
        .openapi("ResetPassword"),
    ),
  },
  responses: {
    200: jsonContent(
      z.object({ status: z.literal("password_reset") }).openapi("PasswordReset"),
      "The password is changed",
    ),
    ...errorResponses(400, 403, 404, 415, 429),
  },
});

export const changePassword = createRoute({
  method: "post",
  path: "/users/me/password",
  middleware: [rateLimit("sign-in"), guard({ scope: "self" })],
  tags,
  summary: "Change the caller's password",
  description:
    "A wrong `current_password` answers 400 and counts towards the lockout, as a sign-in does. Every other session of the user ends; the caller's stays. The address gets a notice.",
  security: bearerSecurity,
  request: {
    body: jsonOrForm(
      z.object({ current_password: password, new_password: password }).openapi("ChangePassword"),
    ),
  },
  responses: {
    204: { description: "Changed" },
    ...errorResponses(400, 401, 403, 415, 429),
  },
});
