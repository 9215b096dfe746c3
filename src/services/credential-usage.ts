import { sql } from "drizzle-orm";
import { serviceCredentials } from "../db/schema";
import type { Clock, Database } from "../ports";

const USAGE_FLUSH_MS = 60_000;

/**
 * `last_used_at` of service credentials, buffered per isolate and written at most once a minute
 * in one statement: it tells an operator whether a credential is still in use, it is no record,
 * so it may lag.
 */
export function createCredentialUsage(deps: { clock: Clock }) {
  const usage = new Map<string, Date>();
  let flushedAt = deps.clock.now().getTime();

  return {
    record(credentialId: string, at: Date) {
      usage.set(credentialId, at);
    },

    /**
     * Writes the buffered values when a minute has passed (or `force`); call after a request.
     * The database is opened only when there is something to write.
     */
    async flush(db: () => Database, force = false) {
      const now = deps.clock.now().getTime();
      if (usage.size === 0 || (!force && now - flushedAt < USAGE_FLUSH_MS)) return;
      flushedAt = now;
      const batch = [...usage];
      usage.clear();
      const rows = sql.join(
        batch.map(([id, at]) => sql`(${id}, ${at.toISOString()}::timestamptz)`),
        sql`, `,
      );
      await db().execute(sql`
        update ${serviceCredentials}
        set last_used_at = greatest(${serviceCredentials.last_used_at}, used.at)
        from (values ${rows}) as used(id, at)
        where ${serviceCredentials.id} = used.id`);
    },
  };
}

export type CredentialUsage = ReturnType<typeof createCredentialUsage>;
