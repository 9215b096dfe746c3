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
    withDatabase(options.database, (db) => db().insert(auditLogs).values(rows));
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
