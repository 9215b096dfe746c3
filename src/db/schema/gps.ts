import { z } from "@hono/zod-openapi";
import { sql } from "drizzle-orm";
import {
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { apps } from "./apps";
import { users } from "./identity";
import { createSelectSchema, isoTimestamp, metadataSchema } from "./zod";

const at = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const deviceStatus = ["unknown", "online", "offline"] as const;

/** A tracker. Its `dk_…` secret is stored as SHA-256; `external_id` is the id its app sends. */
export const devices = pgTable(
  "devices",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text().notNull(),
    /** The user who registered the device, whose personal data its positions are (GDPR). */
    owner_id: text().references(() => users.id, { onDelete: "set null" }),
    external_id: text(),
    expected_interval_seconds: integer().notNull().default(300),
    metadata: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    secret_hash: text().notNull(),
    secret_prefix: text().notNull(),
    status: text({ enum: deviceStatus }).notNull().default("unknown"),
    last_seen_at: at("last_seen_at"),
    created_at: at("created_at").notNull().defaultNow(),
    updated_at: at("updated_at").notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex("devices_secret_key").on(table.secret_hash),
    index("devices_owner_idx").on(table.owner_id),
    uniqueIndex("devices_app_external_key")
      .on(table.app_id, table.external_id)
      .where(sql`${table.external_id} is not null`),
  ],
);

/** Positions. (device_id, timestamp) is unique: a re-sent point is not stored twice. */
export const positions = pgTable(
  "positions",
  {
    id: text().primaryKey(),
    app_id: text()
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    device_id: text()
      .notNull()
      .references(() => devices.id, { onDelete: "cascade" }),
    timestamp: at("timestamp").notNull(),
    latitude: doublePrecision().notNull(),
    longitude: doublePrecision().notNull(),
    altitude: doublePrecision(),
    speed: doublePrecision(),
    heading: doublePrecision(),
    accuracy: doublePrecision(),
    battery: doublePrecision(),
    attributes: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    received_at: at("received_at").notNull().defaultNow(),
  },
  (table) => [
    // Serves dedupe and every per-device time-range query (newest first). Migration 0010 adds
    // INCLUDE (latitude, longitude, altitude), which drizzle cannot declare, for tracks.
    uniqueIndex("positions_device_time_key").on(table.device_id, table.timestamp.desc()),
    index("positions_app_time_idx").on(table.app_id, table.timestamp.desc()),
  ],
);

export const DeviceSchema = createSelectSchema(devices, {
  metadata: metadataSchema,
  last_seen_at: isoTimestamp.nullable(),
  created_at: isoTimestamp,
  updated_at: isoTimestamp,
})
  .omit({ secret_hash: true })
  .openapi("Device");

export const CreateDeviceSchema = z
  .object({
    name: z.string().min(1).max(200).openapi({ example: "Jane's phone" }),
    external_id: z.string().min(1).max(128).optional().openapi({
      description:
        "The id the tracker app sends (OsmAnd `id`, OwnTracks `tid`, Overland `device_id`)",
      example: "865432101234567",
    }),
    expected_interval_seconds: z.number().int().min(1).max(604_800).default(300),
    metadata: metadataSchema.optional(),
  })
  .strict()
  .openapi("CreateDevice");

export const UpdateDeviceSchema = CreateDeviceSchema.extend({
  external_id: z.string().min(1).max(128).nullable(),
  expected_interval_seconds: z.number().int().min(1).max(604_800),
})
  .partial()
  .strict()
  .openapi("UpdateDevice");

export const PositionSchema = createSelectSchema(positions, {
  timestamp: isoTimestamp,
  received_at: isoTimestamp,
  attributes: metadataSchema,
}).openapi("Position");

/**
 * A reading a device may not have: a negative value is how iOS (`speed`, `course`, accuracy,
 * battery level) and Traccar Client report "unknown", so it is taken as absent, not refused.
 */
const reading = (max: number, description: string) =>
  z
    .number()
    .max(max)
    .transform((value) => (value < 0 ? undefined : value))
    .optional()
    .openapi({ description: `${description}; negative means unknown and is stored as absent` });

/** A point as clients post it (the field names of the REST API). */
export const PointSchema = z
  .object({
    device_id: z.string().min(1).max(64).optional().openapi({
      description:
        "Required when posting with a user token or API key instead of the device's secret",
    }),
    timestamp: z.iso.datetime({ offset: true }).openapi({ example: "2025-11-22T08:26:40Z" }),
    latitude: z.number().min(-90).max(90).openapi({ example: 52.520008 }),
    longitude: z.number().min(-180).max(180).openapi({ example: 13.404954 }),
    altitude: z.number().min(-20_000).max(100_000).optional(),
    speed: reading(1_000_000, "m/s"),
    heading: reading(360, "degrees"),
    accuracy: reading(1_000_000, "metres"),
    battery: reading(100, "percent"),
    attributes: metadataSchema.optional(),
  })
  .strict()
  .openapi("Point");

export type Point = z.infer<typeof PointSchema>;
