import { and, asc, desc, eq, gt, gte, inArray, lte, or, type SQL, sql } from "drizzle-orm";
import type { WithSubquery } from "drizzle-orm/subquery";
import { pageOf } from "../db/page";
import { auditLogs } from "../db/schema";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import type { AuditRow } from "./audit-log";
import type { AuditActorType, AuditSource, ServiceContext } from "./context";

export interface AuditEvent {
  appId: string | null;
  action: string;
  target?: { type: string; id: string | null };
  metadata?: Record<string, unknown>;
  /** Overrides the source's actor, e.g. the user a password grant authenticated. */
  actor?: { type: AuditActorType; id: string | null };
}

/**
 * Runs a change and records its audit event in one transaction, so both land or neither.
 * The event may depend on what the change returned (the new row's id).
 *
 * @example
 * const role = await audited(
 *   ctx,
 *   (tx, now) => tx.insert(roles).values({ … }).returning().then(([row]) => row!),
 *   (row) => ({ appId, action: "role.created", target: { type: "role", id: row.id } }),
 * );
 */
export function audited<T>(
  ctx: ServiceContext,
  change: (tx: Database, now: Date) => Promise<T>,
  event: AuditEvent | ((result: T) => AuditEvent),
): Promise<T> {
  const now = ctx.clock.now();
  return ctx.db.transaction(async (tx) => {
    const result = await change(tx, now);
    await recordAuditIn(tx, ctx.audit, typeof event === "function" ? event(result) : event, now);
    return result;
  });
}

/** Appends an event in the transaction that makes the change, so both land or neither. */
export async function recordAuditIn(
  tx: Database,
  source: AuditSource,
  event: AuditEvent,
  at: Date,
) {
  await tx.insert(auditLogs).values(auditRow(source, event, at));
}

/**
 * Appends an event no change carries (a refused sign-in, a granted client), in the next group
 * commit of the audit log; resolves once its row is durable, so the answer follows the record.
 */
export function recordAudit(
  ctx: ServiceContext,
  event: AuditEvent,
  at: Date,
  source: AuditSource = ctx.audit,
): Promise<void> {
  return ctx.auditLog.append(auditRow(source, event, at), () => ctx.db);
}

/** The row of an event, for a statement that writes it alongside its change. */
export function auditRow(source: AuditSource, event: AuditEvent, at: Date): AuditRow {
  return {
    id: newId("aud"),
    app_id: event.appId,
    actor_type: event.actor?.type ?? source.actorType,
    actor_id: event.actor ? event.actor.id : source.actorId,
    action: event.action,
    target_type: event.target?.type ?? null,
    target_id: event.target?.id ?? null,
    metadata: event.metadata ?? {},
    ip_address: source.ipAddress,
    user_agent: source.userAgent,
    location: source.location?.() ?? null,
    timestamp: at,
  };
}

/**
 * The INSERT of an audit row in a statement that writes it beside its change (a CTE of
 * `db.with(…)`): one row per row of `per`, so the event is written only if the change was. Its
 * parameters are those {@link auditParameters} gives, cast: in an INSERT … SELECT the server
 * cannot infer their types. `from` names columns of `per` that give a value the caller did not
 * know beforehand (the actor a token's own statement found), in place of its parameter.
 */
export function auditInsertPer(
  db: Database,
  per: WithSubquery,
  from: { actorId?: SQL; targetId?: SQL } = {},
) {
  const p = (name: keyof ReturnType<typeof auditParameters>) => sql.placeholder(name);
  return db.$with("audited", {}).as(sql`
    insert into ${auditLogs} (id, app_id, actor_type, actor_id, action, target_type, target_id,
      metadata, ip_address, user_agent, location, timestamp)
    select ${p("audit_id")}::text, ${p("audit_app_id")}::text, ${p("audit_actor_type")}::text,
      ${from.actorId ?? sql`${p("audit_actor_id")}::text`}, ${p("audit_action")}::text,
      ${p("audit_target_type")}::text, ${from.targetId ?? sql`${p("audit_target_id")}::text`},
      ${p("audit_metadata")}::jsonb, ${p("audit_ip_address")}::text,
      ${p("audit_user_agent")}::text, ${p("audit_location")}::jsonb,
      ${p("audit_timestamp")}::timestamptz
    from ${per}`);
}

/** An event's row as the parameters of {@link auditInsertPer}. */
export function auditParameters(source: AuditSource, event: AuditEvent, at: Date) {
  const row = auditRow(source, event, at);
  return {
    audit_id: row.id,
    audit_app_id: row.app_id ?? null,
    audit_actor_type: row.actor_type,
    audit_actor_id: row.actor_id ?? null,
    audit_action: row.action,
    audit_target_type: row.target_type ?? null,
    audit_target_id: row.target_id ?? null,
    audit_metadata: JSON.stringify(row.metadata ?? {}),
    audit_ip_address: row.ip_address ?? null,
    audit_user_agent: row.user_agent ?? null,
    audit_location: row.location == null ? null : JSON.stringify(row.location),
    audit_timestamp: at.toISOString(),
  };
}

export interface AuditFilter {
  /** One app's events; undefined for every app (the platform admin's reports). */
  appId?: string | undefined;
  action?: string | undefined;
  actions?: readonly string[] | undefined;
  actor_id?: string | undefined;
  actor_type?: AuditActorType | undefined;
  target_id?: string | undefined;
  /** Events by or about this id: its actor, or its target. */
  involving?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/** The SQL condition of a filter, shared by lists, reports and exports. */
export function auditWhere(filter: AuditFilter): SQL | undefined {
  const conditions: SQL[] = [];
  if (filter.appId) conditions.push(eq(auditLogs.app_id, filter.appId));
  if (filter.action) conditions.push(eq(auditLogs.action, filter.action));
  if (filter.actions?.length) conditions.push(inArray(auditLogs.action, [...filter.actions]));
  if (filter.actor_id) conditions.push(eq(auditLogs.actor_id, filter.actor_id));
  if (filter.actor_type) conditions.push(eq(auditLogs.actor_type, filter.actor_type));
  if (filter.target_id) conditions.push(eq(auditLogs.target_id, filter.target_id));
  if (filter.involving) {
    const either = or(
      eq(auditLogs.actor_id, filter.involving),
      eq(auditLogs.target_id, filter.involving),
    );
    if (either) conditions.push(either);
  }
  if (filter.from) conditions.push(gte(auditLogs.timestamp, filter.from));
  if (filter.to) conditions.push(lte(auditLogs.timestamp, filter.to));
  return and(...conditions);
}

export async function listAudit(
  ctx: ServiceContext,
  appId: string,
  filter: Omit<AuditFilter, "appId">,
  page: { limit: number; offset: number },
) {
  const where = auditWhere({ ...filter, appId });
  const { rows, total } = await pageOf(ctx.db, auditLogs, {
    where,
    order: [desc(auditLogs.timestamp), desc(auditLogs.id)],
    page,
  });
  return { rows, total };
}

/**
 * Every event of a filter, oldest first, a page at a time (keyset on time and id, so memory
 * stays bounded however many there are).
 */
export async function* auditEvents(ctx: ServiceContext, filter: AuditFilter, pageSize = 1000) {
  let after: { timestamp: Date; id: string } | undefined;
  for (;;) {
    const keyset = after
      ? or(
          gt(auditLogs.timestamp, after.timestamp),
          and(eq(auditLogs.timestamp, after.timestamp), gt(auditLogs.id, after.id)),
        )
      : undefined;
    const rows = await ctx.db
      .select()
      .from(auditLogs)
      .where(and(auditWhere(filter), keyset))
      .orderBy(asc(auditLogs.timestamp), asc(auditLogs.id))
      .limit(pageSize);
    if (rows.length > 0) yield rows;
    const last = rows.at(-1);
    if (!last || rows.length < pageSize) return;
    after = { timestamp: last.timestamp, id: last.id };
  }
}

export async function findAudit(ctx: ServiceContext, appId: string, id: string) {
  const [row] = await ctx.db
    .select()
    .from(auditLogs)
    .where(and(eq(auditLogs.app_id, appId), eq(auditLogs.id, id)));
  return row;
}
