import { z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import {
  bigint,
  index,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import type { GeoLocation } from "../../ports/geoip";
import { apps } from "./apps";
import { PERMISSION_PATTERN } from "./permission";
import { createSelectSchema, geoLocationSchema, isoTimestamp, metadataSchema } from "./zod";

const timestamps = {
  created_at: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  updated_at: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
};

/** Platform-wide values the Node entry bootstraps on first start (the admin key's hash). */
export const platformSettings = pgTable("platform_settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  created_at: timestamps.created_at,
});

export const roles = pgTable(
  "roles",
  {
    id: text("id").primaryKey(),
    app_id: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    display_name: text("display_name").notNull(),
    permissions: jsonb("permissions").$type<string[]>().notNull().default([]),
    ...timestamps,
  },
  (table) => [uniqueIndex("roles_app_name_key").on(table.app_id, table.name)],
);

export const userStatus = ["active", "deactivated"] as const;

export const users = pgTable(
  "users",
  {
    id: text("id").primaryKey(),
    app_id: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    email: text("email").notNull(),
    display_name: text("display_name"),
    password_hash: text("password_hash"),
    status: text("status", { enum: userStatus }).notNull().default("active"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    last_login_at: timestamp("last_login_at", { withTimezone: true, mode: "date" }),
    /** When the user proved they receive mail at `email` (a link, a code, or an admin said so). */
    email_verified_at: timestamp("email_verified_at", { withTimezone: true, mode: "date" }),
    /** The TOTP secret (RFC 6238), encrypted with KEY_ENCRYPTION_SECRET; set at enrollment. */
    totp_secret_encrypted: text("totp_secret_encrypted"),
    /** When the user confirmed the secret with a code: 2FA is on from then. */
    totp_enabled_at: timestamp("totp_enabled_at", { withTimezone: true, mode: "date" }),
    /** The last time step a code was accepted for: a code is used once. */
    totp_last_step: bigint("totp_last_step", { mode: "number" }),
    ...timestamps,
  },
  (table) => [uniqueIndex("users_app_email_key").on(table.app_id, sql`lower(${table.email})`)],
);

/** One-time 2FA recovery codes, stored as SHA-256 hashes. */
export const recoveryCodes = pgTable(
  "recovery_codes",
  {
    id: text("id").primaryKey(),
    user_id: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    code_hash: text("code_hash").notNull(),
    used_at: timestamp("used_at", { withTimezone: true, mode: "date" }),
    created_at: timestamps.created_at,
  },
  (table) => [uniqueIndex("recovery_codes_user_hash_key").on(table.user_id, table.code_hash)],
);

export const userRoles = pgTable(
  "user_roles",
  {
    user_id: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    role_id: text("role_id")
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    created_at: timestamps.created_at,
  },
  (table) => [primaryKey({ columns: [table.user_id, table.role_id] })],
);

export const keyStatus = ["active", "retired"] as const;

/** Per-app JWT signing keys. The private half is encrypted with KEY_ENCRYPTION_SECRET. */
export const signingKeys = pgTable(
  "signing_keys",
  {
    kid: text("kid").primaryKey(),
    app_id: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    alg: text("alg").notNull(),
    public_jwk: jsonb("public_jwk").$type<Record<string, unknown>>().notNull(),
    private_jwk_encrypted: text("private_jwk_encrypted").notNull(),
    status: text("status", { enum: keyStatus }).notNull().default("active"),
    created_at: timestamps.created_at,
    retired_at: timestamp("retired_at", { withTimezone: true, mode: "date" }),
    /** When the last token this key signed expires: it leaves the JWKS then. */
    publish_until: timestamp("publish_until", { withTimezone: true, mode: "date" }),
  },
  (table) => [index("signing_keys_app_idx").on(table.app_id, table.status)],
);

/** A login: the family of refresh tokens rotated from one password grant. */
export const sessions = pgTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    app_id: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    user_id: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    ip_address: text("ip_address"),
    user_agent: text("user_agent"),
    /** Where the sign-in came from (GeoIP), when known. */
    location: jsonb("location").$type<GeoLocation>(),
    /** The OAuth client the session was granted to, and the scopes its tokens carry. */
    client_id: text("client_id"),
    scopes: jsonb("scopes").$type<string[]>(),
    created_at: timestamps.created_at,
    last_used_at: timestamp("last_used_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow(),
    expires_at: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    revoked_at: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    revoked_reason: text("revoked_reason"),
  },
  (table) => [index("sessions_user_idx").on(table.user_id)],
);

export const refreshTokenStatus = ["active", "rotated", "revoked"] as const;

export const refreshTokens = pgTable(
  "refresh_tokens",
  {
    id: text("id").primaryKey(),
    session_id: text("session_id")
      .notNull()
      .references(() => sessions.id, { onDelete: "cascade" }),
    /** SHA-256 of the `rt_…` secret; the secret itself is never stored. */
    token_hash: text("token_hash").notNull(),
    status: text("status", { enum: refreshTokenStatus }).notNull().default("active"),
    replaced_by: text("replaced_by"),
    /** The successor's secret, encrypted, kept only during the app's refresh reuse interval. */
    successor_encrypted: text("successor_encrypted"),
    rotated_at: timestamp("rotated_at", { withTimezone: true, mode: "date" }),
    expires_at: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    created_at: timestamps.created_at,
  },
  (table) => [
    uniqueIndex("refresh_tokens_hash_key").on(table.token_hash),
    index("refresh_tokens_session_idx").on(table.session_id),
  ],
);

/** Append-only trail of authentication events and changes. */
export const auditLogs = pgTable(
  "audit_logs",
  {
    id: text("id").primaryKey(),
    app_id: text("app_id").references(() => apps.id, { onDelete: "cascade" }),
    actor_type: text("actor_type", {
      enum: ["admin", "user", "api_key", "service", "anonymous", "system"],
    }).notNull(),
    actor_id: text("actor_id"),
    action: text("action").notNull(),
    target_type: text("target_type"),
    target_id: text("target_id"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    ip_address: text("ip_address"),
    user_agent: text("user_agent"),
    /** Where the request came from (GeoIP), when known. */
    location: jsonb("location").$type<GeoLocation>(),
    timestamp: timestamp("timestamp", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (table) => [
    index("audit_logs_app_time_idx").on(table.app_id, table.timestamp),
    index("audit_logs_app_action_idx").on(table.app_id, table.action),
  ],
);

/** A saved audit query of the platform admin: a period and filters, downloaded as CSV or JSON. */
export const auditReports = pgTable(
  "audit_reports",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    /** The app reported on; null for every app. */
    app_id: text("app_id").references(() => apps.id, { onDelete: "cascade" }),
    period_from: timestamp("period_from", { withTimezone: true, mode: "date" }).notNull(),
    period_to: timestamp("period_to", { withTimezone: true, mode: "date" }).notNull(),
    filters: jsonb("filters")
      .$type<{ actions?: string[]; actor_id?: string; actor_type?: string }>()
      .notNull()
      .default({}),
    /** Events matched when the report was made; the download reads them afresh. */
    event_count: bigint("event_count", { mode: "number" }).notNull(),
    created_at: timestamps.created_at,
  },
  (table) => [index("audit_reports_created_idx").on(table.created_at)],
);

export const emailSchema = z
  .email()
  .max(254)
  .transform((email) => email.trim())
  .openapi({ example: "jane@acme.co" });
const roleNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, "lowercase letters, digits, `_`, `.`, `-`; 1–63 characters")
  .openapi({ example: "editor" });
const permissionSchema = z
  .string()
  .regex(PERMISSION_PATTERN, "a permission is `resource:action`, either part may be `*`")
  .openapi({ example: "projects:read" });

export const RoleSchema = createSelectSchema(roles, {
  permissions: z.array(z.string()),
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
}).openapi("Role");

export const CreateRoleSchema = z
  .object({
    name: roleNameSchema,
    display_name: z.string().min(1).max(200).optional().openapi({ example: "Editor" }),
    permissions: z.array(permissionSchema).max(200).default([]),
  })
  .strict()
  .openapi("CreateRole");

export const UpdateRoleSchema = CreateRoleSchema.omit({ name: true })
  .extend({ permissions: z.array(permissionSchema).max(200).optional() })
  .partial()
  .strict()
  .openapi("UpdateRole");

export const UserSchema = createSelectSchema(users, {
  metadata: metadataSchema,
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
  last_login_at: isoTimestamp.nullable(),
  email_verified_at: isoTimestamp.nullable(),
})
  .omit({
    password_hash: true,
    totp_secret_encrypted: true,
    totp_enabled_at: true,
    totp_last_step: true,
  })
  .extend({
    roles: z.array(z.string()).openapi({ example: ["admin"] }),
    mfa_enabled: z.boolean().openapi({ description: "Whether the user signs in with a TOTP code" }),
    email_verified: z
      .boolean()
      .openapi({ description: "Whether the user proved they receive mail at `email`" }),
  })
  .openapi("User");

const passwordSchema = z
  .string()
  .min(1)
  .max(1024)
  .openapi({ example: "correct horse battery staple" });

export const CreateUserSchema = z
  .object({
    email: emailSchema,
    display_name: z.string().min(1).max(200).optional().openapi({ example: "Jane Chen" }),
    password: passwordSchema,
    role: roleNameSchema.optional().openapi({ description: "One role to assign" }),
    roles: z.array(roleNameSchema).max(50).optional(),
    metadata: metadataSchema.optional(),
  })
  .strict()
  .openapi("CreateUser");

export const UpdateUserSchema = z
  .object({
    email: emailSchema,
    display_name: z.string().min(1).max(200).nullable(),
    password: passwordSchema,
    status: z.enum(userStatus),
    metadata: metadataSchema,
    email_verified: z.boolean().openapi({
      description:
        "Mark the email verified (or not). Changing `email` clears it unless this says true.",
    }),
  })
  .partial()
  .strict()
  .openapi("UpdateUser");

export const AssignRoleSchema = z.object({ role: roleNameSchema }).strict().openapi("AssignRole");

export const AuditLogSchema = createSelectSchema(auditLogs, {
  metadata: metadataSchema,
  timestamp: isoTimestamp,
  location: geoLocationSchema.nullable(),
}).openapi("AuditLog");

export const AuditReportSchema = createSelectSchema(auditReports, {
  period_from: isoTimestamp,
  period_to: isoTimestamp,
  filters: z.object({
    actions: z.array(z.string()).optional(),
    actor_id: z.string().optional(),
    actor_type: z.string().optional(),
  }),
  created_at: isoTimestamp,
}).openapi("AuditReport");

export const CreateAuditReportSchema = z
  .object({
    name: z.string().min(1).max(200).openapi({ example: "Q4 sign-ins" }),
    from: isoTimestamp,
    to: isoTimestamp,
    app: z
      .string()
      .min(1)
      .max(63)
      .optional()
      .openapi({ description: "One app's events (its name); all apps when absent" }),
    actions: z
      .array(z.string().min(1).max(100))
      .max(50)
      .optional()
      .openapi({ example: ["auth.login.failed"] }),
    actor_id: z.string().min(1).max(64).optional(),
    actor_type: z.enum(["admin", "user", "api_key", "service", "anonymous", "system"]).optional(),
  })
  .strict()
  .openapi("CreateAuditReport");

export const SessionSchema = createSelectSchema(sessions, {
  created_at: isoTimestamp,
  last_used_at: isoTimestamp,
  expires_at: isoTimestamp,
})
  .omit({ revoked_at: true, revoked_reason: true, app_id: true, user_id: true, scopes: true })
  .extend({
    location: geoLocationSchema
      .nullable()
      .openapi({ description: "Where the sign-in came from, when known (GeoIP)" }),
    current: z.boolean().openapi({ description: "The session of the token making this request" }),
  })
  .openapi("Session");
