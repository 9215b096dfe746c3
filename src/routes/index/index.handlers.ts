import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl } from "../../http/links";
import { API_NAME, API_VERSION } from "../../version";
import type { apiInfo } from "./index.routes";

export const getApiInfo: RouteHandler<typeof apiInfo, AppEnv> = (c) =>
  c.json(
    {
      data: { name: API_NAME, version: API_VERSION, api_version: "v1" as const },
      _links: {
        self: absoluteUrl(c, "/v1"),
        health: absoluteUrl(c, "/v1/health"),
        openapi: absoluteUrl(c, "/v1/openapi.json"),
        docs: absoluteUrl(c, "/v1/docs"),
      },
    },
    200,
  );
