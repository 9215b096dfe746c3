import { z } from "@hono/zod-openapi";
import type { ZodType } from "zod";
import { type ErrorCode, errorStatus } from "../lib/errors";

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

/**
 * Both encodings OAuth clients use (RFC 6749 §4.3.2 says form; many send JSON). Not marked
 * required: zod-openapi would then run both validators on every request; the handler checks
 * that a body came.
 */
export function jsonOrForm<T extends ZodType>(schema: T) {
  return {
    required: false,
    content: {
      "application/json": { schema },
      "application/x-www-form-urlencoded": { schema },
    },
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

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.enum(Object.keys(errorStatus) as [ErrorCode, ...ErrorCode[]]).openapi({
        example: "not_found",
      }),
      message: z.string().openapi({ example: "No route for GET /v1/nothing" }),
      details: z
        .array(z.object({ field: z.string(), reason: z.string() }))
        .optional()
        .openapi({ example: [{ field: "email", reason: "Invalid email address" }] }),
      mfa_token: z.string().optional().openapi({
        description: "With `mfa_required`: send it back with `grant_type=mfa_otp` and the code",
      }),
      request_id: z.string().openapi({ example: "0f9a3c1e-5b7d-4e7a-9c4b-2d1f8e6a7b30" }),
    }),
  })
  .openapi("Error");

export type ErrorBody = z.infer<typeof ErrorSchema>;

const errorDescriptions: Record<number, string> = {
  400: "The request is malformed or fails validation",
  401: "Missing or invalid credentials",
  403: "The credentials lack a required permission",
  404: "No such resource",
  409: "The request conflicts with existing state",
  413: "The body is larger than the server accepts",
  415: "The body's content type is not accepted",
  422: "The request is well-formed but cannot be processed",
  429: "Too many requests; see Retry-After",
  500: "Unexpected server error",
  503: "A dependency is unavailable",
};

/**
 * OpenAPI `responses` entries for the given error statuses, to spread into a `createRoute`.
 *
 * @example
 * responses: { 200: jsonContent(AppSchema, "The app"), ...errorResponses(401, 404) }
 */
export function errorResponses<S extends number>(...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      {
        description: errorDescriptions[status] ?? "Error",
        content: { "application/json": { schema: ErrorSchema } },
      },
    ]),
  ) as Record<
    S,
    { description: string; content: { "application/json": { schema: typeof ErrorSchema } } }
  >;
}
