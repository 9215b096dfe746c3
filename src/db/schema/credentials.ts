import { z } from "@hono/zod-openapi";
import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { apps } from "./apps";
import { roles } from "./identity";
import { PERMISSION_PATTERN } from "./permission";
import { createSelectSchema, isoTimestamp } from "./zod";

const at = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** `pk_…` keys; only their SHA-256 is stored. */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text().notNull(),
    /** The first characters of the key, to recognise it in a list. */
    prefix: text().notNull(),
    key_hash: text().notNull(),
    role_id: text()
      .notNull()
      .references(() => roles.id, { onDelete: "cascade" }),
    created_by: text(),
    created_at: at("created_at").notNull().defaultNow(),
    expires_at: at("expires_at"),
    revoked_at: at("revoked_at"),
    last_used_at: at("last_used_at"),
  },
  (table) => [
    uniqueIndex("api_keys_hash_key").on(table.key_hash),
    index("api_keys_app_idx").on(table.app_id),
  ],
);

/** Machine-to-machine clients (`client_credentials`): `svc_…` id, `sk_live_…` secret. */
export const serviceCredentials = pgTable(
  "service_credentials",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text().notNull(),
    client_id: text().notNull(),
    secret_hash: text().notNull(),
    /** After a rotation, the old secret keeps working until `previous_secret_expires_at`. */
    previous_secret_hash: text(),
    previous_secret_expires_at: at("previous_secret_expires_at"),
    permissions: jsonb().$type<string[]>().notNull().default([]),
    created_at: at("created_at").notNull().defaultNow(),
    updated_at: at("updated_at").notNull().defaultNow(),
    revoked_at: at("revoked_at"),
    last_used_at: at("last_used_at"),
  },
  (table) => [uniqueIndex("service_credentials_client_id_key").on(table.client_id)],
);

/** Invitations to join an app with a role; the `inv_tok_…` token is stored as its SHA-256. */
export const invites = pgTable(
  "invites",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    email: text().notNull(),
    role_id: text().references(() => roles.id, { onDelete: "set null" }),
    token_hash: text().notNull(),
    expires_at: at("expires_at").notNull(),
    max_uses: integer().notNull().default(1),
    uses: integer().notNull().default(0),
    created_by: text(),
    created_at: at("created_at").notNull().defaultNow(),
    revoked_at: at("revoked_at"),
  },
  (table) => [
    uniqueIndex("invites_token_key").on(table.token_hash),
    index("invites_app_idx").on(table.app_id),
  ],
);

const permissionSchema = z
  .string()
  .regex(PERMISSION_PATTERN, "a permission is `resource:action`, either part may be `*`");

export const ApiKeySchema = createSelectSchema(apiKeys, {
  created_at: isoTimestamp,
  expires_at: isoTimestamp.nullable(),
  revoked_at: isoTimestamp.nullable(),
  last_used_at: isoTimestamp.nullable(),
})
  .omit({ key_hash: true, role_id: true })
  .extend({ role: z.string().openapi({ example: "api-read-only" }) })
  .openapi("ApiKey");

export const CreateApiKeySchema = z
  .object({
    name: z.string().min(1).max(200).openapi({ example: "CI deploys" }),
    role: z.string().min(1).max(63).openapi({
      description: "`api-read-only`, `api-full-access` or any role of the app",
      example: "api-read-only",
    }),
    expires_at: isoTimestamp.optional(),
  })
  .strict()
  .openapi("CreateApiKey");

export const CredentialSchema = createSelectSchema(serviceCredentials, {
  permissions: z.array(z.string()),
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
  revoked_at: isoTimestamp.nullable(),
  last_used_at: isoTimestamp.nullable(),
  previous_secret_expires_at: isoTimestamp.nullable(),
})
  .omit({ secret_hash: true, previous_secret_hash: true })
  .openapi("ServiceCredential");

export const CreateCredentialSchema = z
  .object({
    name: z.string().min(1).max(200).openapi({ example: "billing-service" }),
    permissions: z
      .array(permissionSchema)
      .min(1)
      .max(200)
      .openapi({ example: ["billing:read"] }),
  })
  .strict()
  .openapi("CreateServiceCredential");

export const UpdateCredentialSchema = z
  .object({
    name: z.string().min(1).max(200),
    permissions: z.array(permissionSchema).min(1).max(200),
    rotate_secret: z.boolean().openapi({ description: "Issue a new secret (answered once)" }),
    grace_period_seconds: z.number().int().min(0).max(604_800).openapi({
      description: "How long the old secret keeps working after a rotation (default 3600)",
    }),
  })
  .partial()
  .strict()
  .openapi("UpdateServiceCredential");

export const InviteSchema = createSelectSchema(invites, {
  created_at: isoTimestamp,
  expires_at: isoTimestamp,
  revoked_at: isoTimestamp.nullable(),
})
  .omit({ token_hash: true, role_id: true })
  .extend({ role: z.string().nullable().openapi({ example: "editor" }) })
  .openapi("Invite");

export const CreateInviteSchema = z
  .object({
    email: z.email().max(254).openapi({ example: "bob@contractor.io" }),
    role: z.string().min(1).max(63).optional().openapi({ example: "editor" }),
    expires_in_hours: z.number().int().min(1).max(720).default(72),
    max_uses: z.number().int().min(1).max(1000).default(1),
  })
  .strict()
  .openapi("CreateInvite");

export const AcceptInviteSchema = z
  .object({
    password: z.string().min(1).max(1024),
    display_name: z.string().min(1).max(200).optional(),
  })
  .strict()
  .openapi("AcceptInvite");
