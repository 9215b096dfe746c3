import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import { stream } from "hono/streaming";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { withDatabase } from "../../ports/database";
import { findAppByName } from "../../services/apps";
import { auditEvents } from "../../services/audit";
import * as reports from "../../services/audit-reports";
import { systemContext } from "../../services/context";
import type * as routes from "./audit-reports.routes";

function resource(c: Context<AppEnv>, report: reports.AuditReport) {
  const self = absoluteUrl(c, `/v1/admin/audit/reports/${report.id}`);
  return {
    data: serialize(report),
    _links: { self, csv: `${self}/download?format=csv`, json: `${self}/download?format=json` },
  };
}

export const createReport: RouteHandler<typeof routes.createReport, AppEnv> = async (c) => {
  const { from, to, app, ...input } = c.req.valid("json");
  const report = await reports.createReport(c.var.services, {
    ...input,
    from: new Date(from),
    to: new Date(to),
    app: app ? await findAppByName(c.var.services, app) : undefined,
  });
  const body = resource(c, report);
  c.header("Location", body._links.self);
  return c.json(body, 201);
};

export const listReports: RouteHandler<typeof routes.listReports, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { rows, total } = await reports.listReports(c.var.services, page);
  return c.json(paginated(c, rows.map(serialize), total, page), 200);
};

export const getReport: RouteHandler<typeof routes.getReport, AppEnv> = async (c) => {
  const report = await reports.findReport(c.var.services, c.req.valid("param").report_id);
  return c.json(resource(c, report), 200);
};

export const downloadReport: RouteHandler<typeof routes.downloadReport, AppEnv> = async (c) => {
  const report = await reports.findReport(c.var.services, c.req.valid("param").report_id);
  const { format } = c.req.valid("query");
  c.header("Content-Type", format === "csv" ? "text/csv; charset=utf-8" : "application/json");
  c.header("Content-Disposition", `attachment; filename="${report.id}.${format}"`);
  c.header("Cache-Control", "no-store");
  // The stream outlives the handler: it reads through a database session of its own.
  return stream(
    c,
    (out) =>
      withDatabase(c.var.ports.db, async (db) => {
        if (format === "csv") await out.write(`${reports.CSV_COLUMNS.join(",")}\r\n`);
        else await out.write("[");
        let first = true;
        for await (const rows of auditEvents(
          systemContext(c.var.services, db),
          reports.reportFilter(report),
        )) {
          if (format === "csv") {
            await out.write(`${rows.map(reports.csvLine).join("\r\n")}\r\n`);
          } else {
            const items = rows.map((row) => JSON.stringify(serialize(row))).join(",\n");
            await out.write(`${first ? "" : ","}\n${items}`);
          }
          first = false;
        }
        if (format === "json") await out.write("\n]\n");
      }),
    async (error) => c.var.logger.error("audit report download failed", { error }),
  );
};
