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
