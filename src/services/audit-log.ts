import { auditLogs } from "../db/schema";
import { type DatabasePort, withDatabase } from "../ports/database";

export type AuditRow = typeof auditLogs.$inferInsert;

/**
 * Appends audit rows that no transaction of their own carries (a refused sign-in, a client
 * credentials grant), committing the rows of concurrent requests in one multi-row INSERT.
 */
export interface AuditLog {
  /** Resolves once the INSERT holding `row` has committed; rejects if that INSERT failed. */
  append(row: AuditRow): Promise<void>;
}

interface Batch {
  rows: AuditRow[];
  committed: Promise<void>;
}

/**
 * Group commit: the first row on an idle log is written at once; rows that arrive while an INSERT
 * is in flight gather into the next one (at most `maxBatch` rows each), written when it settles.
 * Nothing waits on a timer, and each INSERT runs in a continuation of its batch's first caller,
 * which awaits it: on Workers the I/O belongs to a request that is still open.
 */
export function createAuditLog(options: { database: DatabasePort; maxBatch?: number }): AuditLog {
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
        await withDatabase(options.database, (db) => db().insert(auditLogs).values(batch.rows));
      });
      previous = batch.committed.catch(() => {});
      return batch.committed;
    },
  };
}
