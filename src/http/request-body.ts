import type { Context } from "hono";
import { ApiError } from "../lib/errors";
import type { AppEnv } from "./app-env";

/**
 * The JSON or form body a `jsonOrForm` route validated, whichever the client sent; 400 when none
 * came or it lacks `field` (the body is declared optional so that only one validator runs).
 */
export function bodyOf<T>(c: Context<AppEnv>, field: string): T {
  const req = c.req as unknown as { valid(target: "json" | "form"): T };
  const value = (c.req.header("content-type") ?? "").includes("json")
    ? req.valid("json")
    : req.valid("form");
  if (!value || typeof value !== "object" || !(field in value)) {
    throw new ApiError("invalid_request", `The body must carry ${field}`, {
      details: [{ field, reason: "required" }],
    });
  }
  return value;
}

/**
 * The string fields of a hosted page's form (URL-encoded or multipart), as a getter answering ""
 * for a missing one. A multipart body that does not parse, or carries a NUL (which Postgres
 * cannot store, and which the NUL check does not see in multipart), is a 400.
 */
export async function formFields(c: Context<AppEnv>): Promise<(name: string) => string> {
  // A multipart body that does not parse makes the platform's formData() throw a TypeError.
  const form = await c.req.parseBody().catch(() => {
    throw new ApiError("bad_request", "Malformed form body");
  });
  if (Object.values(form).some((value) => typeof value === "string" && value.includes("\0"))) {
    throw new ApiError("bad_request", "NUL characters are not accepted in request bodies");
  }
  return (name) => (typeof form[name] === "string" ? (form[name] as string) : "");
}

/**
 * Hands Hono the parsed fields of a URL-encoded body already read as `text`, as the `formData`
 * its form validator and `parseBody()` look for first. They would otherwise turn the text back
 * into a buffer and parse that through a platform `Response` (two `Response`s and a stream per
 * request on Node); `URLSearchParams` is the parser that `formData()` applies to this media type,
 * and has the `forEach`, `get` and `getAll` the readers use.
 */
export function primeUrlEncodedForm(c: Context<AppEnv>, text: string) {
  if (c.req.bodyCache.formData) return;
  // A promise, as Hono keeps its own cached bodies (typed as the value they resolve to).
  c.req.bodyCache.formData = Promise.resolve(new URLSearchParams(text)) as unknown as FormData;
}
