import { z } from "@hono/zod-openapi";
import { createSchemaFactory } from "drizzle-zod";

/** drizzle-zod bound to the OpenAPI-aware `z`, so table schemas carry `.openapi()` metadata. */
export const { createSelectSchema, createInsertSchema, createUpdateSchema } = createSchemaFactory({
  zodInstance: z,
});

/** A timestamp as the API sends it. */
export const isoTimestamp = z.iso
  .datetime({ offset: true })
  .openapi({ example: "2026-02-20T10:00:00.000Z" });

/** Whether a JSON value nests at most `levels` deep (checked before `JSON.stringify` recurses). */
function nestsWithin(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== "object") return true;
  return levels > 0 && Object.values(value).every((item) => nestsWithin(item, levels - 1));
}

export const metadataSchema = z
  .record(z.string(), z.unknown())
  .refine(
    // Deep nesting would overflow the stack of JSON.stringify (a 500) long before 16 KiB.
    (value) => nestsWithin(value, 32) && JSON.stringify(value).length <= 16_384,
    "must be at most 16 KiB of JSON, nested at most 32 levels deep",
  )
  .openapi({ example: { plan: "growth", region: "us-east-1" } });

/** Where a request came from, as GeoIP tells (every field optional: databases differ). */
export const geoLocationSchema = z
  .object({
    city: z.string().optional(),
    region: z.string().optional(),
    country: z.string().optional(),
    country_code: z.string().optional(),
    latitude: z.number().optional(),
    longitude: z.number().optional(),
  })
  .openapi("GeoLocation", { example: { city: "Berlin", country: "Germany", country_code: "DE" } });
