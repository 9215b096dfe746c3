import { desc, eq } from "drizzle-orm";
import { auditLogs, auditReports } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { AppRecord } from "./apps";
import { type AuditFilter, auditWhere, recordAudit } from "./audit";
import type { AuditActorType, ServiceContext } from "./context";

export type AuditReport = typeof auditReports.$inferSelect;

export interface ReportInput {
  name: string;
  from: Date;
  to: Date;
  app?: AppRecord | undefined;
  actions?: string[] | undefined;
  actor_id?: string | undefined;
  actor_type?: AuditActorType | undefined;
}

/** The events a report covers. */
export function reportFilter(report: AuditReport): AuditFilter {
  return {
    appId: report.app_id ?? undefined,
    from: report.period_from,
    to: report.period_to,
    actions: report.filters.actions,
    actor_id: report.filters.actor_id,
    actor_type: report.filters.actor_type as AuditActorType | undefined,
  };
}

/** Saves a report over a period and filters, with the number of events it matches now. */
export async function createReport(ctx: ServiceContext, input: ReportInput) {
  if (input.from >= input.to) {
    throw new ApiError("validation_error", "The period must end after it starts", {
      details: [{ field: "json.to", reason: "must be after from" }],
    });
  }
  const filters = {
    ...(input.actions?.length ? { actions: input.actions } : {}),
    ...(input.actor_id ? { actor_id: input.actor_id } : {}),
    ...(input.actor_type ? { actor_type: input.actor_type } : {}),
  };
  const where = auditWhere({
    appId: input.app?.id,
    from: input.from,
    to: input.to,
    ...filters,
  });
  const eventCount = await ctx.db.$count(auditLogs, where);
  const now = ctx.clock.now();
  const [report] = await ctx.db
    .insert(auditReports)
    .values({
      id: newId("rpt"),
      name: input.name,
      app_id: input.app?.id ?? null,
      period_from: input.from,
      period_to: input.to,
      filters,
      event_count: eventCount,
      created_at: now,
    })
    .returning();
  if (!report) throw new Error("insert returned no row");
  await recordAudit(
    ctx,
    {
      appId: report.app_id,
      action: "audit_report.created",
      target: { type: "audit_report", id: report.id },
      metadata: { events: eventCount },
    },
    now,
  );
  return report;
}

export async function listReports(ctx: ServiceContext, page: { limit: number; offset: number }) {
  const { db } = ctx;
  const [rows, total] = await Promise.all([
    db
      .select()
      .from(auditReports)
      .orderBy(desc(auditReports.created_at), desc(auditReports.id))
      .limit(page.limit)
      .offset(page.offset),
    db.$count(auditReports),
  ]);
  return { rows, total };
}

export async function findReport(ctx: ServiceContext, id: string): Promise<AuditReport> {
  const [report] = await ctx.db.select().from(auditReports).where(eq(auditReports.id, id));
  if (!report) throw new ApiError("not_found", "No such audit report");
  return report;
}

export const CSV_COLUMNS = [
  "id",
  "timestamp",
  "app_id",
  "actor_type",
  "actor_id",
  "action",
  "target_type",
  "target_id",
  "ip_address",
  "user_agent",
  "location",
  "metadata",
] as const;

/**
 * One audit event as a CSV line (RFC 4180). A cell a spreadsheet would run as a formula
 * (`=`, `+`, `-`, `@`, tab, CR first) is prefixed with `'`.
 */
export function csvLine(row: typeof auditLogs.$inferSelect) {
  return CSV_COLUMNS.map((column) => {
    const value = row[column];
    const text =
      value === null || value === undefined
        ? ""
        : value instanceof Date
          ? value.toISOString()
          : typeof value === "object"
            ? JSON.stringify(value)
            : String(value);
    return csvCell(text);
  }).join(",");
}

function csvCell(text: string) {
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}
