import { z } from "@hono/zod-openapi";
import { index, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { apps } from "./apps";
import { users } from "./identity";
import { createSelectSchema, isoTimestamp } from "./zod";

const at = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/** Bans of a user, or of an IP address or CIDR range. */
export const bans = pgTable(
  "bans",
  {
    id: text().primaryKey(),
    kind: text({ enum: ["user", "ip"] }).notNull(),
    user_id: text().references(() => users.id, { onDelete: "cascade" }),
    app_id: text().references(() => apps.id, { onDelete: "cascade" }),
    /** For `ip` bans: a CIDR range; a single address is stored as /32 or /128. */
    cidr: text(),
    reason: text().notNull(),
    created_at: at("created_at").notNull().defaultNow(),
    expires_at: at("expires_at"),
    lifted_at: at("lifted_at"),
  },
  (table) => [index("bans_user_idx").on(table.user_id), index("bans_kind_idx").on(table.kind)],
);

export const BanSchema = createSelectSchema(bans, {
  created_at: isoTimestamp,
  expires_at: isoTimestamp.nullable(),
  lifted_at: isoTimestamp.nullable(),
}).openapi("Ban");

export const CreateBanSchema = z
  .object({
    user_id: z.string().min(1).max(64).optional().openapi({ example: "usr_01HQ3KXFG6…" }),
    ip: z.string().min(2).max(64).optional().openapi({
      description: "An IP address or a CIDR range",
      example: "203.0.113.0/24",
    }),
    reason: z.string().min(1).max(500).openapi({ example: "credential stuffing" }),
    expires_at: isoTimestamp.optional(),
  })
  .strict()
  .refine((ban) => Boolean(ban.user_id) !== Boolean(ban.ip), {
    message: "give exactly one of user_id and ip",
    path: ["user_id"],
  })
  .openapi("CreateBan");
