import type { RouteHandler } from "@hono/zod-openapi";
import { devMailboxEnabled } from "../../config";
import type { AppEnv } from "../../http/app-env";
import type { consoleConfig } from "./console.routes";

export const getConsoleConfig: RouteHandler<typeof consoleConfig, AppEnv> = (c) => {
  const { config } = c.var.ports;
  const tiles = config.MAP_TILE_URL === "none" ? null : config.MAP_TILE_URL;
  return c.json(
    {
      data: {
        map_tile_url: tiles,
        map_attribution: tiles ? config.MAP_TILE_ATTRIBUTION : null,
        dev_mailbox: devMailboxEnabled(config),
      },
    },
    200,
  );
};
