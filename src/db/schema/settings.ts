import { z } from "@hono/zod-openapi";
import { redirectUriProblem } from "../../lib/redirect-uris";

export const signingAlgorithms = ["RS256", "ES256", "EdDSA"] as const;
export type SigningAlgorithm = (typeof signingAlgorithms)[number];

export const PasswordPolicySchema = z
  .object({
    min_length: z.number().int().min(8).max(128).default(10),
    require_uppercase: z.boolean().default(false),
    require_lowercase: z.boolean().default(false),
    require_digit: z.boolean().default(false),
    require_symbol: z.boolean().default(false),
    check_breached: z.boolean().default(false).openapi({
      description:
        "Refuse passwords found in breached-password corpora (k-anonymity range query: only 5 hex digits of the SHA-1 leave Heimdall; fails open)",
    }),
  })
  .openapi("PasswordPolicy");

export const signupPolicies = ["closed", "invite_only", "open"] as const;

/** The mails Heimdall sends for an app's accounts; each can be re-worded per app. */
export const emailKinds = [
  "email_verification",
  "password_reset",
  "email_otp",
  "email_change",
  "email_changed",
  "password_changed",
  "account_exists",
] as const;
export type EmailKind = (typeof emailKinds)[number];

const templateText = (max: number) => z.string().min(1).max(max);
export const EmailTemplateSchema = z
  .object({
    subject: templateText(200),
    text: templateText(10_000),
    html: templateText(20_000),
  })
  .partial()
  .strict()
  .openapi("EmailTemplate", {
    description:
      "Any part left out keeps Heimdall's default. Placeholders: {{app_name}}, {{email}}, {{link}}, {{code}}, {{minutes}}; values are HTML-escaped in `html`.",
  });

const domainName = z
  .string()
  .min(3)
  .max(253)
  .regex(/^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)+$/, "a lowercase domain name like example.com");

const returnUrl = z
  .url()
  .max(2048)
  .superRefine((uri, ctx) => {
    const problem = redirectUriProblem(uri);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

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
      check_breached: false,
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
    signup: z.enum(signupPolicies).default("closed").openapi({
      description:
        "Who may create an account: `closed` (admins and invites only), `invite_only` (sign-up with a pending invite's token), `open` (anyone, within `signup_email_domains`)",
    }),
    signup_email_domains: z.array(domainName).max(100).default([]).openapi({
      description: "Sign-up only for addresses at these domains (empty: any)",
    }),
    signup_default_role: z.string().min(1).max(64).optional().openapi({
      description: "The role a self-registered user gets",
    }),
    require_email_verification: z.boolean().default(false).openapi({
      description:
        "Refuse sign-in until the user verified their email; otherwise tokens say `email_verified: false`",
    }),
    email_sender_name: z.string().min(1).max(100).optional().openapi({
      description:
        "The sender's display name in mail to this app's users (default: the app's name)",
    }),
    email_templates: z.partialRecord(z.enum(emailKinds), EmailTemplateSchema).default({}),
    account_return_url: returnUrl.optional().openapi({
      description:
        "Where Heimdall's hosted account pages send the user when done (verified, password reset): the app's front end",
    }),
  })
  .openapi("AppSettings");

/** A change to some settings: only the fields named are written, no default fills the rest. */
export const AppSettingsChangeSchema = z
  .object(
    Object.fromEntries(
      Object.entries(AppSettingsSchema.shape).map(([name, field]) => [
        name,
        (field instanceof z.ZodDefault ? field.removeDefault() : field).optional(),
      ]),
    ) as unknown as {
      [K in keyof typeof AppSettingsSchema.shape]: z.ZodOptional<z.ZodType<AppSettings[K]>>;
    },
  )
  .strict()
  .openapi("AppSettingsChange");

export type AppSettings = z.infer<typeof AppSettingsSchema>;
