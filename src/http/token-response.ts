import { z } from "@hono/zod-openapi";

/** RFC 6749 §5.1: what every route that signs a user in answers (token endpoint, invites, platforms). */
export const TokenResponseSchema = z
  .object({
    access_token: z.string(),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int().openapi({ example: 3600 }),
    refresh_token: z.string().optional().openapi({ example: "rt_…" }),
    scope: z.string().optional().openapi({
      description: "Granted permissions (client_credentials) or scopes (authorization_code)",
    }),
    id_token: z
      .string()
      .optional()
      .openapi({ description: "OpenID Connect, when the scope had openid" }),
  })
  .openapi("TokenResponse");
