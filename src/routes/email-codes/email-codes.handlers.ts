import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { deliverEmailAfterResponse } from "../../http/email-dispatch";
import { issuerBase } from "../../http/links";
import { bodyOf } from "../../http/request-body";
import { findAppByName } from "../../services/apps";
import { startEmailSignIn as start } from "../../services/email-sign-in";
import type * as routes from "./email-codes.routes";

export const startEmailSignIn: RouteHandler<typeof routes.startEmailSignIn, AppEnv> = async (c) => {
  const { email, channel } = bodyOf<{ email: string; channel: "code" | "link" }>(c, "email");
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  deliverEmailAfterResponse(
    c,
    await start(c.var.services, app, { email, channel, base: issuerBase(c) }),
  );
  return c.json({ status: "code_sent" as const }, 202);
};
