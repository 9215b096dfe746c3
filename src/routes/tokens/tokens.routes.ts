import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, jsonContent, jsonOrForm } from "../../http/openapi";
import { TokenResponseSchema } from "../../http/token-response";
import { rateLimit } from "../../middleware/rate-limit";

const AppParams = z.object({ app_name: z.string().min(1).max(63) });

export const TokenRequestSchema = z
  .object({
    grant_type: z.string().min(1).max(100).openapi({ example: "password" }),
    email: z.string().max(254).optional().openapi({ example: "jane@acme.co" }),
    password: z.string().max(1024).optional(),
    refresh_token: z.string().max(512).optional(),
    client_id: z
      .string()
      .max(128)
      .optional()
      .openapi({ description: "Or HTTP Basic (RFC 6749 §2.3.1)" }),
    client_secret: z.string().max(256).optional(),
    scope: z.string().max(2000).optional(),
    mfa_token: z
      .string()
      .max(4096)
      .optional()
      .openapi({ description: "grant_type=mfa_otp: the challenge an `mfa_required` answer gave" }),
    otp: z
      .string()
      .max(16)
      .optional()
      .openapi({ description: "grant_type=mfa_otp: the TOTP code" }),
    recovery_code: z
      .string()
      .max(32)
      .optional()
      .openapi({ description: "grant_type=mfa_otp: a recovery code, instead of otp" }),
    code: z.string().max(512).optional().openapi({
      description: "grant_type=authorization_code; grant_type=email_otp: the mailed 6-digit code",
    }),
    email_token: z.string().max(200).optional().openapi({
      description:
        "grant_type=email_otp: the `otl_…` token of the mailed link, instead of email and code",
    }),
    redirect_uri: z.string().max(2048).optional(),
    code_verifier: z.string().max(128).optional().openapi({ description: "PKCE (RFC 7636)" }),
  })
  .openapi("TokenRequest");

const tags = ["Tokens"];

export const issueToken = createRoute({
  method: "post",
  path: "/apps/{app_name}/tokens",
  middleware: [rateLimit("sign-in")],
  tags,
  summary:
    "Issue tokens (grant_type=password, email_otp, mfa_otp, authorization_code, refresh_token or client_credentials)",
  description:
    "With 2FA on, the password and email_otp grants answer 401 `mfa_required` with `error.mfa_token`; complete it with `grant_type=mfa_otp`, the `mfa_token` and `otp` (or `recovery_code`). `grant_type=email_otp` takes the `email` and `code` mailed by `POST /v1/apps/{app_name}/otp/start`, or the link's `email_token`.",
  request: { params: AppParams, body: jsonOrForm(TokenRequestSchema) },
  responses: {
    200: jsonContent(TokenResponseSchema, "Tokens (RFC 6749 §5.1)"),
    ...errorResponses(400, 401, 404, 415),
  },
});

export const refreshToken = createRoute({
  method: "post",
  path: "/apps/{app_name}/tokens/refresh",
  middleware: [rateLimit("sign-in")],
  tags,
  summary: "Rotate a refresh token",
  description:
    "Presenting a refresh token that was already rotated revokes its whole family (reuse detection), unless within the app's `refresh_reuse_interval`.",
  request: {
    params: AppParams,
    body: jsonOrForm(
      z.object({ refresh_token: z.string().min(1).max(512), grant_type: z.string().optional() }),
    ),
  },
  responses: {
    200: jsonContent(TokenResponseSchema, "New tokens"),
    ...errorResponses(400, 404, 415),
  },
});

export const revokeToken = createRoute({
  method: "post",
  path: "/apps/{app_name}/tokens/revoke",
  middleware: [rateLimit("sign-in")],
  tags,
  summary: "Revoke a refresh or access token (RFC 7009)",
  description: "Answers 200 whether or not the token was valid, as RFC 7009 asks.",
  request: {
    params: AppParams,
    body: jsonOrForm(
      z.object({
        token: z.string().min(1).max(8192),
        token_type_hint: z.enum(["refresh_token", "access_token"]).optional(),
      }),
    ),
  },
  responses: {
    200: jsonContent(z.object({}).openapi("Revoked"), "Done"),
    ...errorResponses(400, 404, 415),
  },
});

export const AuthorizeResponseSchema = z
  .object({
    allowed: z.boolean(),
    reason: z.string().optional().openapi({ example: "missing_permission" }),
    subject: z.string().nullable().openapi({ example: "usr_01HQ3KXFG6…" }),
    app: z.string().nullable().openapi({ example: "app_01HQ3KXFG6…" }),
    permissions: z.array(z.string()),
  })
  .openapi("AuthorizeResponse");

export const authorize = createRoute({
  method: "post",
  path: "/authorize",
  middleware: [rateLimit("authorize")],
  tags,
  summary: "Verify a token and check one permission",
  description:
    "A decision, not a gate: answers 200 with `allowed: false` and a `reason` for invalid, expired or revoked tokens and missing permissions. No database read once the app's key is cached.",
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z
            .object({
              token: z.string().min(1).max(8192),
              permission: z.string().min(1).max(200).openapi({ example: "projects:read" }),
              app: z.string().max(64).optional().openapi({
                description: "Require the token to belong to this app (id or name)",
              }),
            })
            .openapi("AuthorizeRequest"),
        },
      },
    },
  },
  responses: {
    200: jsonContent(AuthorizeResponseSchema, "The decision"),
    ...errorResponses(400, 415),
  },
});

export const validateToken = createRoute({
  method: "post",
  path: "/auth/validate",
  middleware: [rateLimit("authorize")],
  tags,
  summary: "Validate a token and describe its user",
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ token: z.string().min(1).max(8192) }).openapi("ValidateRequest"),
        },
      },
    },
  },
  responses: {
    200: jsonContent(
      z
        .object({
          valid: z.boolean(),
          reason: z.string().optional(),
          user: z
            .object({
              id: z.string(),
              email: z.string(),
              role: z.string().nullable(),
              roles: z.array(z.string()),
              app_id: z.string(),
            })
            .optional(),
        })
        .openapi("ValidateResponse"),
      "Whether the token is valid, and whose it is (no `user` for a token issued to a client)",
    ),
    ...errorResponses(400, 415),
  },
});
