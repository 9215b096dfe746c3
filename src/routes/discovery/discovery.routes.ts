import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, jsonContent } from "../../http/openapi";

const tags = ["Discovery"];
const AppParams = z.object({ app_name: z.string().min(1).max(63) });

export const JwksSchema = z
  .object({ keys: z.array(z.record(z.string(), z.unknown())) })
  .openapi("JWKS", { description: "RFC 7517 JSON Web Key Set" });

export const jwks = createRoute({
  method: "get",
  path: "/.well-known/jwks.json",
  tags,
  summary: "Public keys of every active app (RFC 7517)",
  responses: { 200: jsonContent(JwksSchema, "The key set") },
});

export const appJwks = createRoute({
  method: "get",
  path: "/apps/{app_name}/.well-known/jwks.json",
  tags,
  summary: "Public keys of one app",
  request: { params: AppParams },
  responses: { 200: jsonContent(JwksSchema, "The key set"), ...errorResponses(404) },
});

export const openidConfiguration = createRoute({
  method: "get",
  path: "/apps/{app_name}/.well-known/openid-configuration",
  tags,
  summary: "Discovery document of an app's issuer",
  request: { params: AppParams },
  responses: {
    200: jsonContent(
      z
        .object({
          issuer: z.url(),
          authorization_endpoint: z.url(),
          token_endpoint: z.url(),
          userinfo_endpoint: z.url(),
          jwks_uri: z.url(),
          revocation_endpoint: z.url(),
          scopes_supported: z.array(z.string()),
          response_types_supported: z.array(z.string()),
          response_modes_supported: z.array(z.string()),
          grant_types_supported: z.array(z.string()),
          code_challenge_methods_supported: z.array(z.string()),
          subject_types_supported: z.array(z.string()),
          id_token_signing_alg_values_supported: z.array(z.string()),
          token_endpoint_auth_methods_supported: z.array(z.string()),
          claims_supported: z.array(z.string()),
          authorization_response_iss_parameter_supported: z.boolean(),
        })
        .openapi("OpenIdConfiguration"),
      "OpenID Provider Metadata",
    ),
    ...errorResponses(404),
  },
});
