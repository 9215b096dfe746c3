import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { deliverEmailAfterResponse } from "../../http/email-dispatch";
import { issuerBase } from "../../http/links";
import { bodyOf } from "../../http/request-body";
import { appInScope, selfOf } from "../../middleware/auth";
import { findAppByName } from "../../services/apps";
import * as service from "../../services/password-recovery";
import type * as routes from "./passwords.routes";

export const forgotPassword: RouteHandler<typeof routes.forgotPassword, AppEnv> = async (c) => {
  const { email } = bodyOf<{ email: string }>(c, "email");
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  deliverEmailAfterResponse(
    c,
    await service.requestPasswordReset(c.var.services, app, { email, base: issuerBase(c) }),
  );
  return c.json({ status: "reset_sent" as const }, 202);
};

export const resetPassword: RouteHandler<typeof routes.resetPassword, AppEnv> = async (c) => {
  const input = bodyOf<{ token: string; password: string }>(c, "token");
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  await service.resetPassword(c.var.services, app, input);
  return c.json({ status: "password_reset" as const }, 200);
};

export const changePassword: RouteHandler<typeof routes.changePassword, AppEnv> = async (c) => {
  const input = bodyOf<{ current_password: string; new_password: string }>(c, "current_password");
  const subject = selfOf(c);
  const mail = await service.changePassword(
    c.var.services,
    appInScope(c),
    { userId: subject.userId, sessionId: subject.claims.sid },
    input,
  );
  deliverEmailAfterResponse(c, mail);
  return c.body(null, 204);
};
