import { OpenAPIHono } from "@hono/zod-openapi";
import { ApiError } from "../lib/errors";
import type { AppEnv } from "./app-env";

/** Validation failures answer 400 `validation_error` with one detail per failing field. */
const validationHook: ConstructorParameters<typeof OpenAPIHono<AppEnv>>[0] = {
  defaultHook: (result) => {
    if (result.success) return;
    throw new ApiError("validation_error", "The request did not pass validation", {
      details: result.error.issues.map((issue) => ({
        field: [result.target, ...issue.path].join("."),
        reason: issue.message,
      })),
    });
  },
};

/** A router for one capability; mounted by `createApp`. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>(validationHook);
}
