import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { appInScope, selfOf } from "../../middleware/auth";
import * as mfa from "../../services/mfa";
import type * as routes from "./mfa.routes";

const caller = (c: Context<AppEnv>) => mfa.secondFactorUser(c.var.services, selfOf(c).userId);

export const mfaStatus: RouteHandler<typeof routes.mfaStatus, AppEnv> = async (c) => {
  const user = await caller(c);
  const enabled = user.totp_enabled_at !== null;
  return c.json(
    {
      data: {
        enabled,
        pending: !enabled && user.totp_secret_encrypted !== null,
        recovery_codes_left: enabled ? await mfa.recoveryCodesLeft(c.var.services, user.id) : 0,
      },
    },
    200,
  );
};

export const enroll: RouteHandler<typeof routes.enroll, AppEnv> = async (c) => {
  const enrollment = await mfa.enroll(c.var.services, appInScope(c), await caller(c));
  c.header("Cache-Control", "no-store");
  return c.json({ data: enrollment }, 201);
};

export const verify: RouteHandler<typeof routes.verify, AppEnv> = async (c) => {
  const codes = await mfa.confirm(
    c.var.services,
    appInScope(c),
    await caller(c),
    c.req.valid("json").code,
  );
  c.header("Cache-Control", "no-store");
  return c.json({ data: { enabled: true as const, recovery_codes: codes } }, 200);
};

export const disable: RouteHandler<typeof routes.disable, AppEnv> = async (c) => {
  const body = c.req.valid("json");
  await mfa.disable(c.var.services, appInScope(c), await caller(c), {
    otp: body.code,
    recovery_code: body.recovery_code,
  });
  return c.body(null, 204);
};
