import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { afterResponse } from "../../http/after-response";
import type { AppEnv } from "../../http/app-env";
import { issuerBase } from "../../http/links";
import { bodyOf } from "../../http/request-body";
import { ApiError } from "../../lib/errors";
import { authorizationOf, subjectOfToken } from "../../middleware/auth";
import {
  type AccessClaims,
  issuerFor,
  TokenRejected,
  verifyAccessToken,
} from "../../services/access-tokens";
import { findAppByName } from "../../services/apps";
import { clientCredentialsGrant } from "../../services/credentials";
import { emailOtpGrant } from "../../services/email-sign-in";
import { exchangeCode } from "../../services/oauth-code-exchange";
import { hasPermission } from "../../services/permissions";
import { refreshGrant } from "../../services/refresh-rotation";
import { revokeAccessToken, revokeRefreshToken } from "../../services/session-lifecycle";
import { mfaGrant, passwordGrant } from "../../services/sign-in";
import { type AppSubject, subjectId } from "../../services/subject";
import { findUser } from "../../services/users";
import type * as routes from "./tokens.routes";

/** Token responses must not be cached (RFC 6749 §5.1). */
function noStore(c: Context<AppEnv>) {
  c.header("Cache-Control", "no-store");
  c.header("Pragma", "no-cache");
}

/** Client id and secret from HTTP Basic (form-url-encoded parts) or the body (RFC 6749 §2.3.1). */
function clientAuthentication(
  c: Context<AppEnv>,
  input: { client_id?: string | undefined; client_secret?: string | undefined },
) {
  const basic = basicCredentials(c);
  if (basic) return basic;
  return {
    clientId: required(input.client_id, "client_id"),
    clientSecret: required(input.client_secret, "client_secret"),
  };
}

/** HTTP Basic client credentials, when the request carries them. */
function basicCredentials(c: Context<AppEnv>) {
  const header = authorizationOf(c);
  if (header?.toLowerCase().startsWith("basic ")) {
    let decoded: string;
    try {
      decoded = atob(header.slice(6).trim());
    } catch {
      throw new ApiError("invalid_client", "Malformed Basic credentials");
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new ApiError("invalid_client", "Malformed Basic credentials");
    try {
      return {
        clientId: decodeURIComponent(decoded.slice(0, colon).replaceAll("+", " ")),
        clientSecret: decodeURIComponent(decoded.slice(colon + 1).replaceAll("+", " ")),
      };
    } catch {
      throw new ApiError("invalid_client", "Malformed Basic credentials");
    }
  }
  return undefined;
}

function required(value: string | undefined, field: string): string {
  if (!value) {
    throw new ApiError("invalid_request", `${field} is required for this grant`, {
      details: [{ field, reason: "required" }],
    });
  }
  return value;
}

export const issueToken: RouteHandler<typeof routes.issueToken, AppEnv> = async (c) => {
  const input = bodyOf<typeof routes.TokenRequestSchema._output>(c, "grant_type");
  const app = await findAppByName(c.get("services"), c.req.valid("param").app_name);
  const issuer = issuerFor(issuerBase(c), app.name);
  noStore(c);
  switch (input.grant_type) {
    case "password": {
      const tokens = await passwordGrant(c.get("services"), app, {
        email: required(input.email, "email"),
        password: required(input.password, "password"),
        issuer,
      });
      return c.json(tokens, 200);
    }
    case "email_otp": {
      const tokens = await emailOtpGrant(
        c.get("services"),
        app,
        input.email_token
          ? { emailToken: input.email_token, issuer }
          : {
              email: required(input.email, "email"),
              code: required(input.code, "code"),
              issuer,
            },
      );
      return c.json(tokens, 200);
    }
    case "mfa_otp": {
      if (!input.otp && !input.recovery_code) {
        throw new ApiError("invalid_request", "otp or recovery_code is required for this grant", {
          details: [{ field: "otp", reason: "required" }],
        });
      }
      const tokens = await mfaGrant(c.get("services"), app, {
        mfaToken: required(input.mfa_token, "mfa_token"),
        factor: { otp: input.otp, recovery_code: input.recovery_code },
        issuerBase: issuerBase(c),
        issuer,
      });
      return c.json(tokens, 200);
    }
    case "authorization_code": {
      // A public client sends only its id; a confidential one its secret too (Basic or body).
      const client = basicCredentials(c) ?? {
        clientId: required(input.client_id, "client_id"),
        clientSecret: input.client_secret,
      };
      const tokens = await exchangeCode(c.get("services"), app, {
        code: required(input.code, "code"),
        redirectUri: required(input.redirect_uri, "redirect_uri"),
        codeVerifier: required(input.code_verifier, "code_verifier"),
        ...client,
        issuer,
      });
      return c.json(tokens, 200);
    }
    case "refresh_token": {
      const tokens = await refreshGrant(c.get("services"), app, {
        refreshToken: required(input.refresh_token, "refresh_token"),
        issuer,
      });
      return c.json(tokens, 200);
    }
    case "client_credentials": {
      const client = clientAuthentication(c, input);
      const tokens = await clientCredentialsGrant(c.get("services"), app, {
        ...client,
        scope: input.scope,
        issuer,
      });
      afterResponse(
        c,
        c.var.services.credentialUsage.flush(c.var.db),
        "service credential usage flush",
      );
      return c.json(tokens, 200);
    }
    default:
      throw new ApiError(
        "unsupported_grant_type",
        `grant_type ${input.grant_type} is not supported; use password, email_otp, mfa_otp, authorization_code, refresh_token or client_credentials`,
      );
  }
};

export const refreshToken: RouteHandler<typeof routes.refreshToken, AppEnv> = async (c) => {
  const input = bodyOf<{ refresh_token: string }>(c, "refresh_token");
  const app = await findAppByName(c.get("services"), c.req.valid("param").app_name);
  noStore(c);
  const tokens = await refreshGrant(c.get("services"), app, {
    refreshToken: input.refresh_token,
    issuer: issuerFor(issuerBase(c), app.name),
  });
  return c.json(tokens, 200);
};

export const revokeToken: RouteHandler<typeof routes.revokeToken, AppEnv> = async (c) => {
  const { token } = bodyOf<{ token: string }>(c, "token");
  const app = await findAppByName(c.get("services"), c.req.valid("param").app_name);
  noStore(c);
  if (token.startsWith("rt_")) {
    await revokeRefreshToken(c.get("services"), app, token);
    return c.json({}, 200);
  }
  const claims = await verifyQuietly(c, token);
  if (claims) await revokeAccessToken(c.get("services"), app, claims);
  return c.json({}, 200);
};

async function verifyQuietly(c: Context<AppEnv>, token: string): Promise<AccessClaims | undefined> {
  try {
    return await verifyAccessToken(c.get("services"), token, issuerBase(c));
  } catch (error) {
    if (error instanceof TokenRejected) return undefined;
    throw error;
  }
}

export const authorize: RouteHandler<typeof routes.authorize, AppEnv> = async (c) => {
  const { token, permission, app } = c.req.valid("json");
  let subject: AppSubject | undefined;
  try {
    subject = await subjectOfToken(c, token);
  } catch (error) {
    if (!(error instanceof TokenRejected)) throw error;
    return c.json(denied(error.problem), 200);
  }
  if (!subject) return c.json(denied("invalid_token"), 200);
  const decision = {
    subject: subjectId(subject),
    app: subject.appId,
    permissions: subject.permissions,
  };
  const audience = "claims" in subject ? subject.claims.aud : undefined;
  if (app !== undefined && app !== subject.appId && app !== audience) {
    return c.json({ allowed: false, reason: "wrong_app", ...decision }, 200);
  }
  if (!hasPermission(subject.permissions, permission)) {
    return c.json({ allowed: false, reason: "missing_permission", ...decision }, 200);
  }
  return c.json({ allowed: true, ...decision }, 200);
};

const denied = (reason: string) => ({
  allowed: false,
  reason,
  subject: null,
  app: null,
  permissions: [],
});

export const validateToken: RouteHandler<typeof routes.validateToken, AppEnv> = async (c) => {
  const { token } = c.req.valid("json");
  try {
    const claims = await verifyAccessToken(c.get("services"), token, issuerBase(c));
    // A client's token describes no user here: an OAuth client reads its user through userinfo,
    // with what its scopes release.
    if (claims.client_id) return c.json({ valid: true }, 200);
    const user = await findUser(c.get("services"), claims.app, claims.sub);
    return c.json(
      {
        valid: true,
        user: {
          id: user.id,
          email: user.email,
          role: user.roles[0] ?? null,
          roles: user.roles,
          app_id: user.app_id,
        },
      },
      200,
    );
  } catch (error) {
    if (error instanceof TokenRejected) return c.json({ valid: false, reason: error.problem }, 200);
    throw error;
  }
};
