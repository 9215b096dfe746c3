import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase } from "../src/adapters/postgres/database";
import { systemClock } from "../src/adapters/system-clock";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createTestApp, migrationsFolder } from "./support/app";
import { readJson } from "./support/http";
import { bearer, PASSWORD, send, signIn } from "./support/identity";
import { createTestDatabase } from "./support/postgres";
import { type Listening, listen } from "./support/server";
import { announceSkip, services } from "./support/services";

const POINTS = 1_000_000;
const MiB = 1024 * 1024;

if (!services.postgres) announceSkip("the 1,000,000-point GDPR export", "TEST_DATABASE_URL");

/**
 * The GDPR export of a user with a million positions, over a real socket, on real Postgres: it
 * must complete, every point must be in it, and the process's memory must not grow with it.
 */
describe.runIf(Boolean(services.postgres))("GDPR export of 1,000,000 points", () => {
  let db: DatabasePort;
  let server: Listening;
  let drop: () => Promise<void>;
  let token: string;

  beforeAll(async () => {
    const database = await createTestDatabase(services.postgres ?? "");
    drop = database.drop;
    db = await createPostgresDatabase({ url: database.url, migrationsFolder });
    const { app } = createTestApp({ db, clock: systemClock });
    server = await listen(app);
    await send(app, "POST", "/v1/apps", {
      body: { name: "bulk", display_name: "Bulk" },
      headers: adminHeaders,
    });
    await send(app, "POST", "/v1/apps/bulk/users", {
      body: { email: "many@bulk.test", password: PASSWORD, role: "admin" },
      headers: adminHeaders,
    });
    token = (await signIn(app, "bulk", "many@bulk.test")).accessToken;
    const device = await readJson(
      await send(app, "POST", "/v1/devices", { body: { name: "van" }, headers: bearer(token) }),
    );
    // Seeded server-side: one row a second for ~11.6 days.
    await db.session().db.execute(
      `insert into positions (id, app_id, device_id, timestamp, latitude, longitude, speed, attributes, received_at)
       select 'pos_' || lpad(n::text, 26, '0'), '${device.data.app_id}', '${device.data.id}',
              timestamptz '2025-01-01' + n * interval '1 second',
              52.5 + (n % 1000) / 100000.0, 13.4 + (n % 777) / 100000.0, (n % 30)::float, '{}'::jsonb, now()
       from generate_series(1, ${POINTS}) as n`,
    );
    // As autovacuum would have by now: plans are made with the table's real size.
    await db.session().db.execute("analyze positions");
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await db?.close();
    await drop?.();
  });

  it("streams every point in bounded memory", async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error("run with --expose-gc (vitest.config.ts sets it)");
    gc();
    const before = process.memoryUsage();
    let peakRss = before.rss;
    // The heap a full GC leaves, every 100,000 points: what the export really holds.
    const retained: number[] = [];
    const started = performance.now();
    const res = await fetch(`${server.url}/v1/user/export`, { headers: bearer(token) });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let bytes = 0;
    let points = 0;
    let carry = "";
    let tail = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      const text = carry + decoder.decode(value, { stream: true });
      const lines = text.split("\n");
      carry = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.startsWith('{"id":"pos_')) continue;
        points++;
        if (points % 100_000 === 0) {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
          gc();
          retained.push(process.memoryUsage().heapUsed);
        }
      }
      tail = (tail + text).slice(-64);
    }
    const seconds = (performance.now() - started) / 1000;
    const growth = retained.map((heap) => (heap - before.heapUsed) / MiB);
    const rssGrowth = (peakRss - before.rss) / MiB;
    console.log(
      [
        `GDPR export: ${points.toLocaleString("en")} points, ${(bytes / MiB).toFixed(0)} MiB in ${seconds.toFixed(1)} s`,
        `heap after GC at each 100k points: +${growth.map((g) => g.toFixed(1)).join(", +")} MiB over ${(before.heapUsed / MiB).toFixed(0)} MiB`,
        `RSS ${(before.rss / MiB).toFixed(0)} → peak ${(peakRss / MiB).toFixed(0)} MiB (+${rssGrowth.toFixed(0)})`,
      ].join("; "),
    );
    expect(points).toBe(POINTS);
    expect(tail.trimEnd().endsWith("]}]}")).toBe(true);
    expect(bytes / MiB).toBeGreaterThan(150);
    // What stays in memory is a page or two, not the 300 MiB document, and does not grow with it.
    expect(Math.max(...growth)).toBeLessThan(32);
    expect((growth.at(-1) ?? 0) - (growth[0] ?? 0)).toBeLessThan(8);
  }, 300_000);
});
