import { inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLogs } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import { type AuditRow, createAuditLog } from "../src/services/audit-log";
import { type DatabaseBackend, databaseBackends } from "./support/backends";

/** The port, counting the INSERT statements issued through its sessions. */
function countingInserts(port: DatabasePort) {
  const counter = { inserts: 0 };
  const counted: DatabasePort = {
    driver: port.driver,
    sharedAcrossRequests: port.sharedAcrossRequests,
    close: () => port.close(),
    session() {
      const session = port.session();
      const db = new Proxy(session.db, {
        get(target, property, receiver) {
          if (property === "insert") counter.inserts += 1;
          return Reflect.get(target, property, receiver);
        },
      });
      return { db, release: () => session.release() };
    },
  };
  return { port: counted, counter };
}

/** The caller's own database, which a shared log never uses. */
const notUsed = (): never => {
  throw new Error("a shared audit log used the caller's database");
};

let sequence = 0;
function row(action: string, appId: string | null = null): AuditRow {
  sequence += 1;
  return {
    id: `aud_test_${sequence.toString().padStart(6, "0")}`,
    app_id: appId,
    actor_type: "system",
    actor_id: null,
    action,
    metadata: { n: sequence },
    timestamp: new Date(),
  };
}

describe.each(databaseBackends("the audit log's group commit"))(
  "the audit log on $name",
  (backend) => {
    let opened: Awaited<ReturnType<DatabaseBackend["open"]>>;
    beforeAll(async () => {
      opened = await backend.open();
    });
    afterAll(() => opened.dispose());

    const stored = (ids: string[]) =>
      opened.db
        .session()
        .db.select({ id: auditLogs.id })
        .from(auditLogs)
        .where(inArray(auditLogs.id, ids));

    it("writes the first event of an idle log at once, in its own INSERT", async () => {
      const { port, counter } = countingInserts(opened.db);
      const log = createAuditLog({ database: port });
      const first = row("test.single");
      await log.append(first, notUsed);
      expect(counter.inserts).toBe(1);
      expect(await stored([first.id as string])).toHaveLength(1);
    });

    it("commits 50 concurrent events in fewer INSERTs than events, every row stored once each resolves", async () => {
      const { port, counter } = countingInserts(opened.db);
      const log = createAuditLog({ database: port, maxBatch: 20 });
      const rows = Array.from({ length: 50 }, () => row("test.concurrent"));
      const ids = rows.map((r) => r.id as string);
      // Each caller checks its own row is there as soon as its promise resolves.
      const seen = await Promise.all(
        rows.map(async (r) => {
          await log.append(r, notUsed);
          return (await stored([r.id as string])).length;
        }),
      );
      expect(seen).toEqual(rows.map(() => 1));
      expect(await stored(ids)).toHaveLength(50);
      expect(counter.inserts).toBeLessThan(50);
      // 50 rows at 20 a batch take at least 3 INSERTs.
      expect(counter.inserts).toBeGreaterThanOrEqual(3);
    });

    it("stores every column of a batch as given: nulls, and text and JSON that need quoting", async () => {
      const log = createAuditLog({ database: opened.db });
      const plain = row("test.columns");
      const full: AuditRow = {
        ...row("test.columns"),
        actor_type: "user",
        actor_id: "usr_columns",
        target_type: "session",
        target_id: "ses_columns",
        metadata: { quoted: 'a"b\\c{},NULL é', list: [1, null] },
        ip_address: "192.0.2.7",
        user_agent: 'agent "x" NULL',
        location: { city: 'O\'Neill "North"', country_code: "NZ", latitude: -36.85 },
        timestamp: new Date("2026-01-02T03:04:05.678Z"),
      };
      await Promise.all([log.append(plain, notUsed), log.append(full, notUsed)]);
      const rows = await opened.db
        .session()
        .db.select()
        .from(auditLogs)
        .where(inArray(auditLogs.id, [plain.id as string, full.id as string]))
        .orderBy(auditLogs.id);
      expect(rows).toEqual([
        {
          ...plain,
          target_type: null,
          target_id: null,
          ip_address: null,
          user_agent: null,
          location: null,
        },
        full,
      ]);
    });

    it("writes each event on the caller's own database where requests cannot share work (Workers)", async () => {
      const { port, counter } = countingInserts(opened.db);
      const log = createAuditLog({ database: { ...port, sharedAcrossRequests: false } });
      const own = countingInserts(opened.db);
      const session = own.port.session();
      const rows = Array.from({ length: 5 }, () => row("test.own"));
      await Promise.all(rows.map((r) => log.append(r, () => session.db)));
      await session.release();
      expect(counter.inserts).toBe(0);
      expect(own.counter.inserts).toBe(5);
      expect(await stored(rows.map((r) => r.id as string))).toHaveLength(5);
    });

    it("rejects every caller of a failed batch, stores none of its rows, and writes the next batch", async () => {
      const log = createAuditLog({ database: opened.db });
      // The lead's INSERT has started (or finished) before the next three are appended, together:
      // they make one batch, which the row naming an app that does not exist (a foreign key)
      // makes fail as a whole.
      const lead = row("test.lead");
      const leading = log.append(lead, notUsed);
      await new Promise((resolve) => setImmediate(resolve));
      const batch = [row("test.batched"), row("test.batched", "app_missing"), row("test.batched")];
      const results = await Promise.allSettled([
        leading,
        ...batch.map((r) => log.append(r, notUsed)),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        "fulfilled",
        "rejected",
        "rejected",
        "rejected",
      ]);
      expect(await stored([lead.id as string])).toHaveLength(1);
      expect(await stored(batch.map((r) => r.id as string))).toHaveLength(0);

      const after = row("test.after");
      await log.append(after, notUsed);
      expect(await stored([after.id as string])).toHaveLength(1);
    });
  },
);
