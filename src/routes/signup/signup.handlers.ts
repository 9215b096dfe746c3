import type { RouteHandler } from "@hono/zod-openapi";
import type { z } from "zod";
import type {
  EmailChangeSchema,
  SignUpSchema,
  VerificationRequestSchema,
  VerifyEmailSchema,
} from "../../db/schema/signup";
import type { AppEnv } from "../../http/app-env";
import { deliverEmailAfterResponse } from "../../http/email-dispatch";
import { absoluteUrl, issuerBase } from "../../http/links";
import { bodyOf } from "../../http/request-body";
import { serialize } from "../../lib/serialize";
import { appInScope, selfOf } from "../../middleware/auth";
import { issuerFor } from "../../services/access-tokens";
import { findAppByName } from "../../services/apps";
import { requestEmailChange, verifyEmail as verify } from "../../services/email-address";
import { signUp as register, resendVerification } from "../../services/signup";
import { findUser } from "../../services/users";
import type * as routes from "./signup.routes";

const verificationSent = { status: "verification_sent" as const };

const appOf = (c: Parameters<RouteHandler<typeof routes.signUp, AppEnv>>[0]) =>
  findAppByName(c.var.services, c.req.valid("param").app_name);

export const signUp: RouteHandler<typeof routes.signUp, AppEnv> = async (c) => {
  const app = await appOf(c);
  const input = bodyOf<z.output<typeof SignUpSchema>>(c, "email");
  const base = issuerBase(c);
  const result = await register(c.var.services, app, input, {
    base,
    issuer: issuerFor(base, app.name),
  });
  deliverEmailAfterResponse(c, result.mail);
  c.header("Cache-Control", "no-store");
  if (result.status === "verification_sent") return c.json(verificationSent, 202);
  const user = await findUser(c.var.services, app.id, result.user.id);
  return c.json({ ...result.tokens, user: serialize(user) }, 201);
};

export const sendVerification: RouteHandler<typeof routes.sendVerification, AppEnv> = async (c) => {
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  const { email } = bodyOf<z.output<typeof VerificationRequestSchema>>(c, "email");
  deliverEmailAfterResponse(c, await resendVerification(c.var.services, app, email, issuerBase(c)));
  return c.json(verificationSent, 202);
};

export const verifyEmail: RouteHandler<typeof routes.verifyEmail, AppEnv> = async (c) => {
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  const { token } = bodyOf<z.output<typeof VerifyEmailSchema>>(c, "token");
  const user = await verify(c.var.services, app, token);
  return c.json({ data: serialize(user), _links: { self: absoluteUrl(c, "/v1/users/me") } }, 200);
};

export const changeEmail: RouteHandler<typeof routes.changeEmail, AppEnv> = async (c) => {
  const subject = selfOf(c);
  const input = bodyOf<z.output<typeof EmailChangeSchema>>(c, "email");
  deliverEmailAfterResponse(
    c,
    await requestEmailChange(c.var.services, appInScope(c), subject.userId, input, issuerBase(c)),
  );
  return c.json(verificationSent, 202);
};
