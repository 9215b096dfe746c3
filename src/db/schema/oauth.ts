import { z } from "@hono/zod-openapi";
import {
  boolean,
  index,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { redirectUriProblem } from "../../lib/redirect-uris";
import { apps } from "./apps";
import { users } from "./identity";
import { createSelectSchema, isoTimestamp } from "./zod";

const at = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const oauthClientTypes = ["public", "confidential"] as const;

/** Third-party apps that obtain tokens for an app's users (authorization code + PKCE). */
export const oauthClients = pgTable(
  "oauth_clients",
  {
    /** The `client_id`, `ocl_…`. */
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text().notNull(),
    type: text({ enum: oauthClientTypes }).notNull(),
    /** Compared exactly (RFC 9700 §2.1): no wildcards, no prefix matching. */
    redirect_uris: jsonb().$type<string[]>().notNull(),
    /** What the client may ask for: Heimdall permissions, and `openid`, `email`, `profile`. */
    scopes: jsonb().$type<string[]>().notNull(),
    /** SHA-256 of the secret of a confidential client. */
    secret_hash: text(),
    /** The secret before the last rotation, accepted until `previous_secret_expires_at`. */
    previous_secret_hash: text(),
    previous_secret_expires_at: at("previous_secret_expires_at"),
    created_at: at("created_at").notNull().defaultNow(),
    updated_at: at("updated_at").notNull().defaultNow(),
  },
  (table) => [index("oauth_clients_app_idx").on(table.app_id)],
);

/** Authorization codes: single-use, 60 s, bound to client, redirect URI and PKCE challenge. */
export const oauthCodes = pgTable("oauth_codes", {
  /** SHA-256 of the code. */
  code_hash: text().primaryKey(),
  app_id: text()
    .notNull()
    .references(() => apps.id, { onDelete: "cascade" }),
  client_id: text()
    .notNull()
    .references(() => oauthClients.id, { onDelete: "cascade" }),
  user_id: text()
    .notNull()
    .references(() => users.id, { onDelete: "cascade" }),
  redirect_uri: text().notNull(),
  code_challenge: text().notNull(),
  scopes: jsonb().$type<string[]>().notNull(),
  nonce: text(),
  auth_time: at("auth_time").notNull(),
  expires_at: at("expires_at").notNull(),
  used_at: at("used_at"),
  /** The session the exchange opened: a replayed code ends it (RFC 6749 §4.1.2). */
  session_id: text(),
  created_at: at("created_at").notNull().defaultNow(),
});

/** What a user allowed a client: listed and revocable by the user. */
export const oauthGrants = pgTable(
  "oauth_grants",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    user_id: text()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    client_id: text()
      .notNull()
      .references(() => oauthClients.id, { onDelete: "cascade" }),
    scopes: jsonb().$type<string[]>().notNull(),
    created_at: at("created_at").notNull().defaultNow(),
    updated_at: at("updated_at").notNull().defaultNow(),
  },
  (table) => [uniqueIndex("oauth_grants_user_client_key").on(table.user_id, table.client_id)],
);

/** External identity providers an app's users may sign in with (OpenID Connect). */
export const platforms = pgTable(
  "platforms",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    /** The slug in URLs, unique per app: `/v1/apps/<app>/platforms/<name>/login`. */
    name: text().notNull(),
    display_name: text().notNull(),
    issuer: text().notNull(),
    /** Taken from the issuer's discovery document when not set. */
    authorization_endpoint: text(),
    token_endpoint: text(),
    jwks_uri: text(),
    userinfo_endpoint: text(),
    client_id: text().notNull(),
    /** Encrypted with KEY_ENCRYPTION_SECRET; null for a public client. */
    client_secret_encrypted: text(),
    scopes: jsonb().$type<string[]>().notNull(),
    /** Which provider claims fill Heimdall's fields: `{ email: "email", name: "name" }`. */
    claim_mapping: jsonb().$type<Record<string, string>>().notNull().default({}),
    /**
     * Set by the platform admin only: the provider's verified email links the app's existing
     * user of that address. Otherwise an existing account is linked only by its own sign-in.
     */
    trusted: boolean().notNull().default(false),
    created_at: at("created_at").notNull().defaultNow(),
    updated_at: at("updated_at").notNull().defaultNow(),
  },
  (table) => [uniqueIndex("platforms_app_name_key").on(table.app_id, table.name)],
);

/** A user's account at a platform: `(platform, subject)` names one Heimdall user. */
export const userIdentities = pgTable(
  "user_identities",
  {
    platform_id: text()
      .notNull()
      .references(() => platforms.id, { onDelete: "cascade" }),
    subject: text().notNull(),
    user_id: text()
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    email: text(),
    created_at: at("created_at").notNull().defaultNow(),
  },
  (table) => [
    primaryKey({ columns: [table.platform_id, table.subject] }),
    index("user_identities_user_idx").on(table.user_id),
  ],
);

/** A sign-in at a platform under way: its `state` (hashed), nonce and PKCE verifier. Single use. */
export const platformLogins = pgTable("platform_logins", {
  state_hash: text().primaryKey(),
  platform_id: text()
    .notNull()
    .references(() => platforms.id, { onDelete: "cascade" }),
  nonce: text().notNull(),
  code_verifier_encrypted: text().notNull(),
  /** A signed-in user linking this provider to their account: the callback links to them. */
  link_user_id: text().references(() => users.id, { onDelete: "cascade" }),
  expires_at: at("expires_at").notNull(),
  used_at: at("used_at"),
  created_at: at("created_at").notNull().defaultNow(),
});

const redirectUri = z
  .url({ protocol: /^[a-z][a-z0-9+.-]*$/ })
  .max(2048)
  .superRefine((uri, ctx) => {
    const problem = redirectUriProblem(uri);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .openapi({
    example: "https://app.example.com/callback",
    description: "https, http to 127.0.0.1, [::1] or localhost, or a private-use scheme",
  });

export const OAuthClientSchema = createSelectSchema(oauthClients, {
  redirect_uris: z.array(z.string()),
  scopes: z.array(z.string()),
  previous_secret_expires_at: isoTimestamp.nullable(),
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
})
  .omit({ secret_hash: true, previous_secret_hash: true })
  .extend({ client_id: z.string().openapi({ example: "ocl_01JD3KXFG6QK7N8Y2M4V5W6X7Z" }) })
  .openapi("OAuthClient");

export const CreateOAuthClientSchema = z
  .object({
    name: z.string().min(1).max(200).openapi({ example: "Fleet dashboard" }),
    type: z.enum(oauthClientTypes),
    redirect_uris: z.array(redirectUri).min(1).max(20),
    scopes: z
      .array(z.string().min(1).max(100))
      .min(1)
      .max(100)
      .openapi({ example: ["openid", "email", "gps:read"] }),
  })
  .strict()
  .openapi("CreateOAuthClient");

export const UpdateOAuthClientSchema = CreateOAuthClientSchema.omit({ type: true })
  .partial()
  .strict()
  .openapi("UpdateOAuthClient");

export const OAuthGrantSchema = createSelectSchema(oauthGrants, {
  scopes: z.array(z.string()),
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
})
  .omit({ app_id: true, user_id: true })
  .extend({ client_name: z.string() })
  .openapi("OAuthGrant");

export const PlatformSchema = createSelectSchema(platforms, {
  scopes: z.array(z.string()),
  claim_mapping: z.record(z.string(), z.string()),
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
})
  .omit({ client_secret_encrypted: true })
  .openapi("Platform");

const platformScopes = z.array(z.string().min(1).max(100)).max(50);
const claimMapping = z
  .object({ email: z.string().min(1).max(100), name: z.string().min(1).max(100) })
  .partial()
  .strict()
  .openapi({ description: "Provider claims for Heimdall's fields", example: { name: "nickname" } });

export const CreatePlatformSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "lowercase letters, digits and `-`")
      .openapi({ example: "google" }),
    display_name: z.string().min(1).max(200).openapi({ example: "Google" }),
    issuer: z.url({ protocol: /^https?$/ }).max(2048),
    authorization_endpoint: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    token_endpoint: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    jwks_uri: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    userinfo_endpoint: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    client_id: z.string().min(1).max(512),
    client_secret: z.string().min(1).max(1024).optional(),
    scopes: platformScopes.default(["openid", "email", "profile"]),
    claim_mapping: claimMapping.default({}),
    trusted: z.boolean().default(false).openapi({
      description:
        "Platform admin only (`/v1/apps/{app_name}/…`): the provider's verified email signs in the app's existing user of that address. Otherwise an existing account is linked only by signing in to it first (`POST /v1/users/me/platforms/{name}/link`).",
    }),
  })
  .strict()
  .openapi("CreatePlatform");

/** The same fields, none required and none defaulted: a PATCH changes only what it sends. */
export const UpdatePlatformSchema = CreatePlatformSchema.omit({
  name: true,
  scopes: true,
  claim_mapping: true,
  trusted: true,
})
  .extend({ scopes: platformScopes, claim_mapping: claimMapping, trusted: z.boolean() })
  .partial()
  .strict()
  .openapi("UpdatePlatform");
