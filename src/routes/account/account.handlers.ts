import type { RouteHandler } from "@hono/zod-openapi";
import { stream } from "hono/streaming";
import type { AppEnv } from "../../http/app-env";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope, selfOf } from "../../middleware/auth";
import { withDatabase } from "../../ports/database";
import { eraseUser, exportUser } from "../../services/account";
import { listAudit } from "../../services/audit";
import { systemContext } from "../../services/context";
import * as oauth from "../../services/oauth";
import type * as routes from "./account.routes";

export const activity: RouteHandler<typeof routes.activity, AppEnv> = async (c) => {
  const { limit, offset, action, from, to } = c.req.valid("query");
  const { rows, total } = await listAudit(
    c.var.services,
    appInScope(c).id,
    {
      involving: selfOf(c).userId,
      action,
      from: from ? new Date(from) : undefined,
      to: to ? new Date(to) : undefined,
    },
    { limit, offset },
  );
  return c.json(paginated(c, rows.map(serialize), total, { limit, offset }), 200);
};

export const exportData: RouteHandler<typeof routes.exportData, AppEnv> = async (c) => {
  const app = appInScope(c);
  const { userId } = selfOf(c);
  const now = c.var.ports.clock.now();
  c.header("Content-Type", "application/json");
  c.header("Content-Disposition", `attachment; filename="heimdall-export-${userId}.json"`);
  c.header("Cache-Control", "no-store");
  // The stream outlives the handler: it reads through a database session of its own.
  const response = stream(
    c,
    (out) =>
      withDatabase(c.var.ports.db, (db) =>
        exportUser(systemContext(c.var.services, db), app, userId, now, (text) =>
          out.write(text).then(() => undefined),
        ),
      ),
    async (error) => c.var.logger.error("data export failed", { error }),
  );
  // The route's JSON document, written in pieces rather than built with c.json().
  return response as never;
};

export const erase: RouteHandler<typeof routes.erase, AppEnv> = async (c) => {
  const erased = await eraseUser(
    c.var.services,
    appInScope(c),
    selfOf(c).userId,
    c.req.valid("json").password,
  );
  return c.json({ data: { erased: true as const, ...erased } }, 200);
};

export const listGrants: RouteHandler<typeof routes.listGrants, AppEnv> = async (c) => {
  const grants = await oauth.listGrants(c.var.services, selfOf(c).userId);
  return c.json({ data: grants.map(serialize) }, 200);
};

export const revokeGrant: RouteHandler<typeof routes.revokeGrant, AppEnv> = async (c) => {
  await oauth.revokeGrant(
    c.var.services,
    appInScope(c),
    selfOf(c).userId,
    c.req.valid("param").grant_id,
  );
  return c.body(null, 204);
};
