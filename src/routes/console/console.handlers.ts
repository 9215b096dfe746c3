import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import type { consoleConfig } from "./console.routes";

export const getConsoleConfig: RouteHandler<typeof consoleConfig, AppEnv> = (c) => {
  const { MAP_TILE_URL, MAP_TILE_ATTRIBUTION } = c.var.ports.config;
  const tiles = MAP_TILE_URL === "none" ? null : MAP_TILE_URL;
  return c.json(
    { data: { map_tile_url: tiles, map_attribution: tiles ? MAP_TILE_ATTRIBUTION : null } },
    200,
  );
};
