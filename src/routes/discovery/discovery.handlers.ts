import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { issuerBase } from "../../http/links";
import { issuerFor } from "../../services/access-tokens";
import { findAppByName, settingsOf } from "../../services/apps";
import * as discovery from "../../services/discovery";
import { OIDC_SCOPES } from "../../services/oauth-clients";
import type * as routes from "./discovery.routes";

/** Verifiers cache the key set; new keys are fetched on an unknown `kid` anyway. */
function cacheable(c: Context<AppEnv>) {
  c.header("Cache-Control", "public, max-age=300, stale-while-revalidate=600");
}

export const jwks: RouteHandler<typeof routes.jwks, AppEnv> = async (c) => {
  const keys = await discovery.platformJwks(c.var.services);
  cacheable(c);
  return c.json({ keys }, 200);
};

export const appJwks: RouteHandler<typeof routes.appJwks, AppEnv> = async (c) => {
  const keys = await discovery.appJwks(c.var.services, c.req.valid("param").app_name);
  cacheable(c);
  return c.json({ keys }, 200);
};

export const openidConfiguration: RouteHandler<typeof routes.openidConfiguration, AppEnv> = async (
  c,
) => {
  const app = await findAppByName(c.var.services, c.req.valid("param").app_name);
  const issuer = issuerFor(issuerBase(c), app.name);
  cacheable(c);
  return c.json(
    {
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: `${issuer}/tokens`,
      userinfo_endpoint: `${issuer}/oauth/userinfo`,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      revocation_endpoint: `${issuer}/tokens/revoke`,
      scopes_supported: [...OIDC_SCOPES],
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: [
        "authorization_code",
        "refresh_token",
        "password",
        "client_credentials",
      ],
      code_challenge_methods_supported: ["S256"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: [settingsOf(app).signing_algorithm],
      token_endpoint_auth_methods_supported: ["none", "client_secret_basic", "client_secret_post"],
      claims_supported: [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "email",
        "email_verified",
        "name",
        "updated_at",
      ],
      authorization_response_iss_parameter_supported: true,
    },
    200,
  );
};
