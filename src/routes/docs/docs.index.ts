import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv } from "../../http/app-env";
import { rateLimit } from "../../middleware/rate-limit";
import { API_VERSION } from "../../version";

type Document = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;

/**
 * Routers mounted under `/v1/apps/:app_name` do not declare that parameter themselves (the same
 * router is also mounted at `/v1`); declare it on every operation whose path has it.
 */
function declareMountParameters(document: Document): Document {
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    if (!path.includes("{app_name}") || !item) continue;
    for (const method of ["get", "post", "put", "patch", "delete"] as const) {
      const operation = item[method];
      if (!operation) continue;
      const parameters = operation.parameters ?? [];
      const declared = parameters.some(
        (p) => "name" in p && p.name === "app_name" && p.in === "path",
      );
      if (!declared) {
        operation.parameters = [
          { name: "app_name", in: "path", required: true, schema: { type: "string" } },
          ...parameters,
        ];
      }
    }
  }
  return document;
}

/**
 * `/v1/openapi.json` (OpenAPI 3.1, generated from the routes' zod schemas) and `/v1/docs`
 * (Scalar's reference UI, its script served with the console's files). Registered last: the document covers every route on `app`.
 */
export function registerDocs(app: OpenAPIHono<AppEnv>) {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description:
      "The platform admin key on /v1/apps/…; an app user's access token (JWT) on the top-level routes.",
  });
  const trackerSchemes = {
    deviceBasic: {
      type: "http",
      scheme: "basic",
      description: "Tracker apps (OwnTracks): the device secret `dk_…` as the password",
    },
    deviceKey: {
      type: "apiKey",
      in: "query",
      name: "key",
      description: "Tracker apps (OsmAnd, Traccar Client, GPSLogger): `?key=dk_…`",
    },
    deviceAccessToken: {
      type: "apiKey",
      in: "query",
      name: "access_token",
      description: "Overland: `?access_token=dk_…`",
    },
  } as const;
  for (const [name, scheme] of Object.entries(trackerSchemes)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  let cached: Document | undefined;
  app.get("/v1/openapi.json", rateLimit("unlimited"), (c) => {
    cached ??= declareMountParameters(
      app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "Heimdall API",
          version: API_VERSION,
          description:
            "Identity and live-GPS API at the edge. Errors use `{error:{code, message, details?, request_id}}`.",
        },
      }),
    );
    return c.json({
      ...cached,
      servers: [{ url: c.var.ports.config.PUBLIC_URL ?? new URL(c.req.url).origin }],
    });
  });
  app.get(
    "/v1/docs",
    rateLimit("unlimited"),
    Scalar({
      url: "/v1/openapi.json",
      pageTitle: "Heimdall API",
      // The installed build, copied by console/vite.config.ts; nothing loads from elsewhere.
      cdn: "/vendor/scalar/standalone.js",
      withDefaultFonts: false,
      telemetry: false,
    }),
  );
}
