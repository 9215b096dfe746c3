import { sql } from "drizzle-orm";
import { jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { AppSettings } from "./settings";
import { createInsertSchema, createSelectSchema, isoTimestamp, metadataSchema } from "./zod";

export const appStatus = ["active", "archived"] as const;

/** Tenants. Each app is an isolated namespace of users, roles, credentials and devices. */
export const apps = pgTable(
  "apps",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    display_name: text("display_name").notNull(),
    status: text("status", { enum: appStatus }).notNull().default("active"),
    metadata: jsonb("metadata").$type<Record<string, unknown>>().notNull().default({}),
    /** Only the values set explicitly; defaults are applied when read (`services/settings`). */
    settings: jsonb("settings").$type<Partial<AppSettings>>().notNull().default({}),
    created_at: timestamp("created_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow(),
    updated_at: timestamp("updated_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow(),
  },
  (table) => [uniqueIndex("apps_name_key").on(sql`lower(${table.name})`)],
);

export const AppSchema = createSelectSchema(apps, {
  metadata: metadataSchema,
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
})
  .omit({ settings: true })
  .openapi("App");

export const CreateAppSchema = createInsertSchema(apps, {
  name: (schema) =>
    schema
      .regex(/^[a-z0-9][a-z0-9-]{1,62}$/, "lowercase letters, digits and dashes, 2–63 characters")
      .openapi({ example: "acme-corp" }),
  display_name: (schema) => schema.min(1).max(200).openapi({ example: "Acme Corporation" }),
  metadata: metadataSchema.optional(),
})
  .pick({ name: true, display_name: true, metadata: true })
  .strict()
  .openapi("CreateApp");

export const UpdateAppSchema = CreateAppSchema.omit({ name: true })
  .partial()
  .strict()
  .openapi("UpdateApp");
