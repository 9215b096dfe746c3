import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv } from "../../app-env";
import { API_VERSION } from "../../version";

/**
 * `/v1/openapi.json` (OpenAPI 3.1, generated from the routes' zod schemas) and `/v1/docs`
 * (Scalar's reference UI). Registered last: the document covers every route on `app`.
 */
export function registerDocs(app: OpenAPIHono<AppEnv>) {
  app.doc31("/v1/openapi.json", (c) => ({
    openapi: "3.1.0",
    info: {
      title: "Heimdall API",
      version: API_VERSION,
      description:
        "Identity and live-GPS API at the edge. Errors use `{error:{code, message, details?, request_id}}`.",
    },
    servers: [{ url: c.var.ports.config.PUBLIC_URL ?? new URL(c.req.url).origin }],
  }));
  app.get("/v1/docs", Scalar({ url: "/v1/openapi.json", pageTitle: "Heimdall API" }));
}
