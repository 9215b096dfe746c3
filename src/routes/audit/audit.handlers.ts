import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { ApiError } from "../../lib/errors";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import { findAudit, listAudit } from "../../services/audit";
import type * as routes from "./audit.routes";

export const listAuditLogs: RouteHandler<typeof routes.listAuditLogs, AppEnv> = async (c) => {
  const { limit, offset, from, to, ...filter } = c.req.valid("query");
  const { rows, total } = await listAudit(
    c.var.services,
    appInScope(c).id,
    { ...filter, ...(from ? { from: new Date(from) } : {}), ...(to ? { to: new Date(to) } : {}) },
    { limit, offset },
  );
  return c.json(paginated(c, rows.map(serialize), total, { limit, offset }), 200);
};

export const getAuditLog: RouteHandler<typeof routes.getAuditLog, AppEnv> = async (c) => {
  const { log_id } = c.req.valid("param");
  const row = await findAudit(c.var.services, appInScope(c).id, log_id);
  if (!row) throw new ApiError("not_found", "No such audit event in this app");
  return c.json(
    {
      data: serialize(row),
      _links: { self: absoluteUrl(c, `${scopePath(c)}/audit-logs/${row.id}`) },
    },
    200,
  );
};
