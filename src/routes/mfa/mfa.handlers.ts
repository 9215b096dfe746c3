import type { RouteHandler } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { users } from "../../db/schema";
import type { AppEnv } from "../../http/app-env";
import { serviceContext, tokenDeps } from "../../http/service-context";
import { appInScope, selfOf } from "../../middleware/auth";
import * as mfa from "../../services/mfa";
import type * as routes from "./mfa.routes";

/** The caller's row, 2FA columns included. */
async function caller(c: Context<AppEnv>) {
  const [user] = await c.var
    .db()
    .select()
    .from(users)
    .where(eq(users.id, selfOf(c).userId));
  if (!user) throw new Error("an authenticated user without a row");
  return user;
}

export const mfaStatus: RouteHandler<typeof routes.mfaStatus, AppEnv> = async (c) => {
  const user = await caller(c);
  const enabled = user.totp_enabled_at !== null;
  return c.json(
    {
      data: {
        enabled,
        pending: !enabled && user.totp_secret_encrypted !== null,
        recovery_codes_left: enabled ? await mfa.recoveryCodesLeft(serviceContext(c), user.id) : 0,
      },
    },
    200,
  );
};

export const enroll: RouteHandler<typeof routes.enroll, AppEnv> = async (c) => {
  const enrollment = await mfa.enroll(
    serviceContext(c),
    c.var.services.sealer,
    appInScope(c),
    await caller(c),
  );
  c.header("Cache-Control", "no-store");
  return c.json({ data: enrollment }, 201);
};

export const verify: RouteHandler<typeof routes.verify, AppEnv> = async (c) => {
  const codes = await mfa.confirm(
    serviceContext(c),
    tokenDeps(c),
    appInScope(c),
    await caller(c),
    c.req.valid("json").code,
  );
  c.header("Cache-Control", "no-store");
  return c.json({ data: { enabled: true as const, recovery_codes: codes } }, 200);
};

export const disable: RouteHandler<typeof routes.disable, AppEnv> = async (c) => {
  const body = c.req.valid("json");
  await mfa.disable(serviceContext(c), tokenDeps(c), appInScope(c), await caller(c), {
    otp: body.code,
    recovery_code: body.recovery_code,
  });
  return c.body(null, 204);
};
