import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { checkHealth } from "../../services/health";
import type { health } from "./health.routes";

export const getHealth: RouteHandler<typeof health, AppEnv> = async (c) => {
  const { services, logger } = c.var;
  const report = await checkHealth(services, {
    timeoutMs: 3000,
    onFailure: (check, error) => logger.warn("health check failed", { check, error }),
  });
  c.header("Cache-Control", "no-store");
  const body = { ...report, timestamp: services.clock.now().toISOString() };
  return report.status === "ok" ? c.json(body, 200) : c.json(body, 503);
};
