import type { RouteHandler } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { apps } from "../../db/schema";
import { issuerBase } from "../../lib/links";
import { issuerFor } from "../../services/access-tokens";
import { findAppByName } from "../../services/apps";
import { signingAlgorithms } from "../../services/settings";
import type * as routes from "./discovery.routes";

/** Verifiers cache the key set; new keys are fetched on an unknown `kid` anyway. */
function cacheable(c: Context<AppEnv>) {
  c.header("Cache-Control", "public, max-age=300, stale-while-revalidate=600");
}

export const jwks: RouteHandler<typeof routes.jwks, AppEnv> = async (c) => {
  const db = c.var.db();
  const active = await db.select({ id: apps.id }).from(apps).where(eq(apps.status, "active"));
  const keys =
    active.length > 0
      ? await c.var.ports.keys.jwks(
          db,
          active.map((a) => a.id),
        )
      : [];
  cacheable(c);
  return c.json({ keys }, 200);
};

export const appJwks: RouteHandler<typeof routes.appJwks, AppEnv> = async (c) => {
  const db = c.var.db();
  const app = await findAppByName(db, c.req.valid("param").app_name);
  const keys = app.status === "active" ? await c.var.ports.keys.jwks(db, [app.id]) : [];
  cacheable(c);
  return c.json({ keys }, 200);
};

export const openidConfiguration: RouteHandler<typeof routes.openidConfiguration, AppEnv> = async (
  c,
) => {
  const app = await findAppByName(c.var.db(), c.req.valid("param").app_name);
  const issuer = issuerFor(issuerBase(c), app.name);
  cacheable(c);
  return c.json(
    {
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
      token_endpoint: `${issuer}/tokens`,
      revocation_endpoint: `${issuer}/tokens/revoke`,
      grant_types_supported: ["password", "refresh_token"],
      response_types_supported: ["token"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: [...signingAlgorithms],
      token_endpoint_auth_methods_supported: ["none"],
    },
    200,
  );
};
