import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { issuerBase } from "../../http/links";
import { ApiError } from "../../lib/errors";
import { findAppByName } from "../../services/apps";
import { startEmailSignIn as start } from "../../services/email-sign-in";
import type * as routes from "./email-codes.routes";

/** JSON or form body, whichever the client sent (the route declares both); 400 when none came. */
function body<T>(c: Context<AppEnv>, field: string): T {
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

export const startEmailSignIn: RouteHandler<typeof routes.startEmailSignIn, AppEnv> = async (c) => {
  const { email, channel } = body<{ email: string; channel: "code" | "link" }>(c, "email");
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  await start(c.var.services, app, { email, channel, base: issuerBase(c) });
  return c.json({ status: "code_sent" as const }, 202);
};
