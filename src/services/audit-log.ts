import { sql } from "drizzle-orm";
import { preparedPerDatabase } from "../db/prepared";
import { auditLogs } from "../db/schema";
import type { Database } from "../ports";
import { type DatabasePort, withDatabase } from "../ports/database";

export type AuditRow = typeof auditLogs.$inferInsert;

/**
 * Appends audit rows that no transaction of their own carries (a refused sign-in, a client
 * credentials grant), committing the rows of concurrent requests in one multi-row INSERT.
 */
export interface AuditLog {
  /**
   * Resolves once the INSERT holding `row` has committed; rejects if that INSERT failed.
   * `own` is the caller's database, used where requests cannot share one INSERT.
   */
  append(row: AuditRow, own: () => Database): Promise<void>;
}

interface Batch {
  rows: AuditRow[];
  committed: Promise<void>;
}

/**
 * Group commit: the first row on an idle log is written at once; rows that arrive while an INSERT
 * is in flight gather into the next one (at most `maxBatch` rows each), written when it settles.
 * Nothing waits on a timer. Where one request may not wait on another's I/O (Workers: a cancelled
 * request would take its batch's INSERT with it), each row is its own INSERT on the caller's database.
 */
export function createAuditLog(options: { database: DatabasePort; maxBatch?: number }): AuditLog {
  const insert = (rows: AuditRow[]) =>
    withDatabase(options.database, (db) => batchInsert(db()).execute(columnsOf(rows)));
  if (!options.database.sharedAcrossRequests) {
    return {
      async append(row, own) {
        await own().insert(auditLogs).values(row);
      },
    };
  }
  const maxBatch = options.maxBatch ?? 200;
  let gathering: Batch | undefined;
  let previous: Promise<unknown> = Promise.resolve();
  return {
    append(row) {
      if (gathering && gathering.rows.length < maxBatch) {
        gathering.rows.push(row);
        return gathering.committed;
      }
      const batch: Batch = { rows: [row], committed: Promise.resolve() };
      gathering = batch;
      batch.committed = previous.then(async () => {
        if (gathering === batch) gathering = undefined;
        await insert(batch.rows);
      });
      previous = batch.committed.catch(() => {});
      return batch.committed;
    },
  };
}

/**
 * The batch's INSERT: one statement whatever the number of rows, each column an array parameter,
 * so it is built and planned once instead of per batch.
 */
const batchInsert = preparedPerDatabase((db) => {
  const column = (name: keyof AuditRow, type: string) =>
    sql`${sql.placeholder(name)}::${sql.raw(type)}[]`;
  return db
    .insert(auditLogs)
    .select(
      sql`select * from unnest(${column("id", "text")}, ${column("app_id", "text")},
        ${column("actor_type", "text")}, ${column("actor_id", "text")}, ${column("action", "text")},
        ${column("target_type", "text")}, ${column("target_id", "text")},
        ${column("metadata", "jsonb")}, ${column("ip_address", "text")},
        ${column("user_agent", "text")}, ${column("location", "jsonb")},
        ${column("timestamp", "timestamptz")})`,
    )
    .prepare("audit_batch_insert");
});

/** The batch as the statement's parameters: one array per column, JSON columns as text. */
function columnsOf(rows: AuditRow[]) {
  const json = (value: unknown) => (value == null ? null : JSON.stringify(value));
  return {
    id: rows.map((row) => row.id),
    app_id: rows.map((row) => row.app_id ?? null),
    actor_type: rows.map((row) => row.actor_type),
    actor_id: rows.map((row) => row.actor_id ?? null),
    action: rows.map((row) => row.action),
    target_type: rows.map((row) => row.target_type ?? null),
    target_id: rows.map((row) => row.target_id ?? null),
    metadata: rows.map((row) => json(row.metadata ?? {})),
    ip_address: rows.map((row) => row.ip_address ?? null),
    user_agent: rows.map((row) => row.user_agent ?? null),
    location: rows.map((row) => json(row.location)),
    timestamp: rows.map((row) => (row.timestamp ?? new Date()).toISOString()),
  };
}
