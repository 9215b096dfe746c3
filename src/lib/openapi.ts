import { z } from "@hono/zod-openapi";
import type { ZodType } from "zod";

/** A JSON response entry for `createRoute`'s `responses`. */
export function jsonContent<T extends ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A required JSON request body for `createRoute`'s `request`. */
export function jsonBody<T extends ZodType>(schema: T, description?: string) {
  return {
    required: true,
    ...(description ? { description } : {}),
    content: { "application/json": { schema } },
  };
}

/** `{data, _links}`: the envelope of one resource. */
export function resourceSchema<T extends ZodType>(item: T, name: string) {
  return z.object({ data: item, _links: z.record(z.string(), z.url()) }).openapi(name);
}

/** Bearer auth, for the security requirement of protected operations. */
export const bearerSecurity = [{ bearerAuth: [] }];

/** Tracker ingest: the device secret wherever a tracker app can carry it, or a Bearer token. */
export const trackerSecurity: Array<Record<string, string[]>> = [
  { bearerAuth: [] },
  { deviceBasic: [] },
  { deviceKey: [] },
  { deviceAccessToken: [] },
];
