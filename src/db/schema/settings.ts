import { z } from "@hono/zod-openapi";

export const signingAlgorithms = ["RS256", "ES256", "EdDSA"] as const;
export type SigningAlgorithm = (typeof signingAlgorithms)[number];

export const PasswordPolicySchema = z
  .object({
    min_length: z.number().int().min(8).max(128).default(10),
    require_uppercase: z.boolean().default(false),
    require_lowercase: z.boolean().default(false),
    require_digit: z.boolean().default(false),
    require_symbol: z.boolean().default(false),
  })
  .openapi("PasswordPolicy");

/** Per-app settings with their defaults; apps store only what they changed. */
export const AppSettingsSchema = z
  .object({
    access_token_ttl: z.number().int().min(60).max(86_400).default(3600).openapi({
      description: "Access token lifetime, seconds",
    }),
    refresh_token_ttl: z.number().int().min(300).max(31_536_000).default(2_592_000).openapi({
      description: "Refresh token (session) lifetime, seconds",
    }),
    refresh_reuse_interval: z.number().int().min(0).max(300).default(0).openapi({
      description:
        "Seconds during which a just-rotated refresh token may be presented again and receive the same successor (0 = off)",
    }),
    signing_algorithm: z.enum(signingAlgorithms).default("RS256"),
    password_policy: PasswordPolicySchema.default({
      min_length: 10,
      require_uppercase: false,
      require_lowercase: false,
      require_digit: false,
      require_symbol: false,
    }),
    cors_origins: z
      .array(z.url({ protocol: /^https?$/ }))
      .max(50)
      .default([]),
    gps_retention_days: z.number().int().min(1).max(36_500).optional().openapi({
      description: "Delete positions older than this many days (unset: keep everything)",
    }),
    token_rate_limit_per_minute: z.number().int().min(1).max(100_000).optional().openapi({
      description:
        "Requests per minute per client IP to this app's token endpoints (default: RATE_LIMIT_TOKEN_PER_MINUTE)",
    }),
    default_rate_limit_per_minute: z.number().int().min(1).max(100_000).optional().openapi({
      description:
        "Requests per minute per access token of this app on other routes (default: RATE_LIMIT_DEFAULT_PER_MINUTE)",
    }),
  })
  .openapi("AppSettings");

export type AppSettings = z.infer<typeof AppSettingsSchema>;
