import { z } from "zod";
import { parseProxyTrust } from "./lib/client-ip";
import { parseAllowlistEntry } from "./lib/host-allowlist";

/** `90s`, `1m`, `2h` → milliseconds. */
const duration = z
  .string()
  .regex(/^\d+(ms|s|m|h)$/, "a duration like 30s, 1m or 2h")
  .transform((value) => {
    const [, amount, unit] = /^(\d+)(ms|s|m|h)$/.exec(value) ?? [];
    const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as "ms" | "s" | "m" | "h"];
    return Number(amount) * factor;
  });

const origins = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((origin) => origin.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.union([z.literal("*"), z.url({ protocol: /^https?$/ })])));

const allowlist = z
  .string()
  .transform((value) =>
    value
      .split(",")
      .map((entry) => entry.trim())
      .filter(Boolean),
  )
  .pipe(
    z.array(
      z.string().refine((entry) => parseAllowlistEntry(entry) !== undefined, {
        error: (issue) => `${String(issue.input)} is not a host, host:port, IP address or CIDR`,
      }),
    ),
  );

/** `TRUST_PROXY`: proxy addresses / CIDR ranges and `cloudflare`; `false` (or unset) is none. */
const proxyTrust = z.string().transform((value, ctx) => {
  if (value.trim().toLowerCase() === "false") return undefined;
  try {
    return parseProxyTrust(value);
  } catch {
    ctx.addIssue({
      code: "custom",
      message: "must be a comma-separated list of IP addresses or CIDR ranges, or cloudflare",
    });
    return z.NEVER;
  }
});

const flag = z.enum(["true", "false"]).transform((value) => value === "true");

/**
 * Every setting Heimdall reads, from `process.env` on Node or the Worker's `env` bindings.
 * Unknown variables are ignored; a bad one fails start-up with its name in the message.
 */
export const configSchema = z
  .object({
    APP_ENV: z.enum(["development", "production", "test"]).default("development"),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error", "silent"]).default("info"),
    PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
    CORS_ORIGINS: origins.default(["*"]),
    MAX_BODY_BYTES: z.coerce.number().int().positive().default(1_048_576),
    DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
    NEON_WS_PROXY: z.url({ protocol: /^wss?$/ }).optional(),
    UPSTASH_REDIS_REST_URL: z.url({ protocol: /^https?$/ }).optional(),
    UPSTASH_REDIS_REST_TOKEN: z.string().min(1).optional(),
    ADMIN_API_KEY: z.string().min(24, "must be at least 24 characters").optional(),
    KEY_ENCRYPTION_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    PASSWORD_HASH_MEMORY_KIB: z.coerce.number().int().min(1024).max(65_536).default(19_456),
    PASSWORD_HASH_ITERATIONS: z.coerce.number().int().min(1).max(10).default(2),
    RATE_LIMIT_ENABLED: z
      .enum(["true", "false"])
      .default("true")
      .transform((value) => value === "true"),
    RATE_LIMIT_ADMIN_PER_MINUTE: z.coerce.number().int().positive().default(100),
    RATE_LIMIT_TOKEN_PER_MINUTE: z.coerce.number().int().positive().default(300),
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: z.coerce.number().int().positive().default(1000),
    RATE_LIMIT_DEFAULT_PER_MINUTE: z.coerce.number().int().positive().default(100),
    BRUTEFORCE_MAX_ATTEMPTS: z.coerce.number().int().positive().default(20),
    BRUTEFORCE_WINDOW: duration.default(60_000),
    BRUTEFORCE_LOCKOUT: duration.default(60_000),
    // The only way past the outbound-fetch policy (src/services/outbound.ts): hosts, host:port,
    // IP addresses or CIDRs a tenant's URLs may reach although private or loopback, and over http.
    OUTBOUND_ALLOWLIST: allowlist.default([]),
    REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
    DATA_DIR: z.string().min(1).default("./.heimdall"),
    // Node only: which peers' X-Forwarded-For / CF-Connecting-IP name the client. Workers always
    // take Cloudflare's CF-Connecting-IP.
    TRUST_PROXY: proxyTrust.optional(),
    PORT: z.coerce.number().int().min(0).max(65_535).default(3000),
    SCHEDULE_INTERVAL_SECONDS: z.coerce.number().int().positive().default(300),
    LIVE_SWEEP_SECONDS: z.coerce.number().int().positive().default(15),
    LIVE_MAX_SOCKETS_PER_IP: z.coerce.number().int().positive().default(20),
    // The console's map tiles (an XYZ template); `none` draws markers and tracks on a plain
    // background, for machines that cannot reach a tile server.
    MAP_TILE_URL: z
      .union([
        z.literal("none"),
        z
          .string()
          .regex(
            /^https?:\/\/.*\{z\}.*\{x\}.*\{y\}/,
            "must be an XYZ URL template with {z}, {x} and {y}, or none",
          ),
      ])
      .default("https://tile.openstreetmap.org/{z}/{x}/{y}.png"),
    MAP_TILE_ATTRIBUTION: z.string().min(1).default("© OpenStreetMap contributors"),
    // GeoIP: a MaxMind GeoLite2/GeoIP2 City database on Node; Workers use Cloudflare's.
    GEOIP_DATABASE_PATH: z.string().min(1).optional(),
    GEOIP_PRIVACY_EXCLUSIONS_ENABLED: flag.default(false),
    GEOIP_PRIVACY_EXCLUSIONS_CACHE_PATH: z
      .string()
      .min(1)
      .default("data/geoip-privacy-exclusions.json"),
    // Mail to an app's users (verification, reset, sign-in codes). With none of these set,
    // messages are printed to the log; SMTP_URL is Node's, EMAIL_PROVIDER works on both.
    SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
    EMAIL_PROVIDER: z.enum(["resend", "postmark"]).optional(),
    EMAIL_API_KEY: z.string().min(1).optional(),
    // The provider's API base (a local server in tests); each provider's own by default.
    EMAIL_API_URL: z.url({ protocol: /^https?$/ }).optional(),
    EMAIL_FROM: z.email().default("heimdall@localhost"),
    // Keeps sent messages readable at GET /v1/dev/mailbox and in the console; never in production.
    DEV_MAILBOX: flag.optional(),
    // The breached-password range API (k-anonymity), asked only by apps that turn the check on.
    BREACHED_PASSWORDS_API_URL: z
      .url({ protocol: /^https?$/ })
      .default("https://api.pwnedpasswords.com/range/"),
    // Sentry: 5xx and unhandled errors only.
    SENTRY_DSN: z.url({ protocol: /^https?$/ }).optional(),
    SENTRY_ENVIRONMENT: z.string().min(1).optional(),
    SENTRY_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(1),
    SENTRY_TRACES_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0),
    SENTRY_DEBUG: flag.default(false),
    SENTRY_SEND_DEFAULT_PII: flag.default(false),
  })
  .superRefine((config, ctx) => {
    if (config.APP_ENV === "production") {
      for (const name of ["ADMIN_API_KEY", "KEY_ENCRYPTION_SECRET"] as const) {
        if (!config[name]) {
          ctx.addIssue({
            code: "custom",
            path: [name],
            message: "required when APP_ENV=production",
          });
        }
      }
    }
    if (config.APP_ENV === "production" && config.DEV_MAILBOX) {
      ctx.addIssue({
        code: "custom",
        path: ["DEV_MAILBOX"],
        message: "shows every user's mail to whoever asks; not allowed when APP_ENV=production",
      });
    }
    if (config.EMAIL_PROVIDER && !config.EMAIL_API_KEY) {
      ctx.addIssue({
        code: "custom",
        path: ["EMAIL_API_KEY"],
        message: `required with EMAIL_PROVIDER=${config.EMAIL_PROVIDER}`,
      });
    }
    if (config.SMTP_URL && config.EMAIL_PROVIDER) {
      ctx.addIssue({
        code: "custom",
        path: ["EMAIL_PROVIDER"],
        message: "set SMTP_URL or EMAIL_PROVIDER, not both",
      });
    }
    if (Boolean(config.UPSTASH_REDIS_REST_URL) !== Boolean(config.UPSTASH_REDIS_REST_TOKEN)) {
      ctx.addIssue({
        code: "custom",
        path: [
          config.UPSTASH_REDIS_REST_URL ? "UPSTASH_REDIS_REST_TOKEN" : "UPSTASH_REDIS_REST_URL",
        ],
        message: "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together",
      });
    }
  });

export type Config = z.infer<typeof configSchema>;

/** The development mailbox is on for `npm start` (development) unless turned off, else off. */
export const devMailboxEnabled = (config: Config) =>
  config.DEV_MAILBOX ?? config.APP_ENV === "development";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/**
 * Parses configuration from an environment record. Empty strings count as unset, so
 * `FOO=` in a `.env` file falls back to the default instead of failing validation.
 *
 * @example
 * const config = parseConfig(process.env); // throws ConfigError("Invalid configuration: PORT …")
 */
export function parseConfig(env: Record<string, unknown>): Config {
  const values = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ""),
  );
  const result = configSchema.safeParse(values);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
    throw new ConfigError(`Invalid configuration: ${problems.join("; ")}`);
  }
  return result.data;
}
