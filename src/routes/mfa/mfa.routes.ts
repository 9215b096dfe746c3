import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../../http/openapi";
import { guard } from "../../middleware/auth";

const tags = ["Two-factor authentication"];
const self = [guard({ scope: "self" })];
const code = z
  .string()
  .regex(/^\d{6}$/, "six digits")
  .openapi({ example: "492039", description: "The code the authenticator app shows now" });

export const mfaStatus = createRoute({
  method: "get",
  path: "/users/me/2fa",
  tags,
  summary: "Whether 2FA is on, and how many recovery codes are left",
  security: bearerSecurity,
  middleware: self,
  responses: {
    200: jsonContent(
      z
        .object({
          data: z.object({
            enabled: z.boolean(),
            pending: z.boolean().openapi({ description: "Enrolled, not confirmed yet" }),
            recovery_codes_left: z.number().int(),
          }),
        })
        .openapi("MfaStatus"),
      "The caller's 2FA",
    ),
    ...errorResponses(401, 403),
  },
});

export const enroll = createRoute({
  method: "post",
  path: "/users/me/2fa",
  tags,
  summary: "Start TOTP enrollment (RFC 6238)",
  description:
    "Answers a new secret, its `otpauth://` URL and that URL as an SVG QR code. 2FA is on once a code from the app is confirmed at `/v1/users/me/2fa/verify`.",
  security: bearerSecurity,
  middleware: self,
  responses: {
    201: jsonContent(
      z
        .object({
          data: z.object({
            secret: z.string().openapi({ example: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" }),
            otpauth_url: z.string().openapi({
              example: "otpauth://totp/Acme:jane%40acme.co?issuer=Acme&secret=…",
            }),
            qr_code_svg: z.string().openapi({ description: "The URL as a QR code, SVG markup" }),
          }),
        })
        .openapi("MfaEnrollment"),
      "Scan or type the secret into an authenticator app",
    ),
    ...errorResponses(401, 403, 409),
  },
});

export const verify = createRoute({
  method: "post",
  path: "/users/me/2fa/verify",
  tags,
  summary: "Confirm enrollment with a code; answers one-time recovery codes",
  security: bearerSecurity,
  middleware: self,
  request: { body: jsonBody(z.object({ code }).strict().openapi("MfaVerify")) },
  responses: {
    200: jsonContent(
      z
        .object({
          data: z.object({
            enabled: z.literal(true),
            recovery_codes: z
              .array(z.string())
              .openapi({ description: "Shown once; each signs in once instead of a code" }),
          }),
        })
        .openapi("MfaEnabled"),
      "2FA is on",
    ),
    ...errorResponses(400, 401, 403, 409, 415, 429),
  },
});

export const disable = createRoute({
  method: "delete",
  path: "/users/me/2fa",
  tags,
  summary: "Turn 2FA off (needs a code or a recovery code)",
  security: bearerSecurity,
  middleware: self,
  request: {
    body: jsonBody(
      z
        .object({ code: code.optional(), recovery_code: z.string().min(1).max(32).optional() })
        .strict()
        .refine((body) => Boolean(body.code ?? body.recovery_code), "code or recovery_code")
        .openapi("MfaDisable"),
    ),
  },
  responses: {
    204: { description: "2FA is off" },
    ...errorResponses(400, 401, 403, 409, 415, 429),
  },
});
