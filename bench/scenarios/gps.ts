/**
 * GPS: batch ingest over HTTP next to a raw multi-row insert through the same driver into the
 * same database, then track queries: a day of one device out of 10,000,000 rows, and 230,000
 * points drawn as one simplified track.
 */
import { sql } from "drizzle-orm";
import { createApp } from "../../src/app";
import { positions } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import {
  benchPorts,
  call,
  fmt,
  openBenchDatabase,
  percentile,
  rssMiB,
  type Scenario,
  serveFetch,
  table,
} from "../harness";
import { meet, notRun } from "../targets";

const BATCHES = Number(process.env.BENCH_BATCHES ?? 60);
const BATCH_SIZE = 1000;
const CONCURRENCY = 4;
const TRACK_ROWS = Number(process.env.BENCH_TRACK_ROWS ?? 10_000_000);
const DEVICES = 100;
/** Requests for a day of track: warm-up, then measured (enough for a p95 that is not the maximum). */
const DAY_WARMUP = 10;
const DAY_REQUESTS = 200;
const LONG_TRACK = 230_000;

function pointsFor(batch: number) {
  const start = Date.parse("2025-01-01T00:00:00Z") + batch * BATCH_SIZE * 1000;
  return Array.from({ length: BATCH_SIZE }, (_, i) => ({
    timestamp: new Date(start + i * 1000).toISOString(),
    latitude: 52.5 + Math.sin(i / 100) / 100,
    longitude: 13.4 + Math.cos(i / 100) / 100,
    speed: 1.4,
    accuracy: 5,
  }));
}

async function inParallel(count: number, concurrency: number, work: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

async function timed(times: number[], work: () => Promise<unknown>) {
  const started = performance.now();
  await work();
  times.push(performance.now() - started);
}

export function gpsScenario(kind: "pglite" | "postgres"): Scenario {
  return {
    name: `gps-${kind}`,
    async run() {
      const db = await openBenchDatabase(kind);
      const app = createApp(await benchPorts(db.port));
      const served = await serveFetch(app.fetch);
      const base = served.url;
      try {
        await call(base, "/v1/apps", { body: { name: "bench", display_name: "Bench" } });
        const device = (
          await call<{ data: Record<string, string> }>(base, "/v1/apps/bench/devices", {
            body: { name: "tracker" },
          })
        ).data;
        const raw = (
          await call<{ data: Record<string, string> }>(base, "/v1/apps/bench/devices", {
            body: { name: "raw" },
          })
        ).data;
        const appId = device.app_id ?? "";
        // Tracks are read at the top level by the app's callers: an API key with gps:read.
        const reader = (
          await call<{ data: { key: string } }>(base, "/v1/apps/bench/api-keys", {
            body: { name: "bench", role: "api-read-only" },
          })
        ).data.key;

        // Batch ingest over HTTP, acknowledged once stored, 4 clients; then the same rows raw.
        await call(base, "/v1/gps/batch", {
          token: device.secret,
          body: { points: pointsFor(10_000) },
        });
        let started = performance.now();
        await inParallel(BATCHES, CONCURRENCY, (i) =>
          call(base, "/v1/gps/batch", { token: device.secret, body: { points: pointsFor(i) } }),
        );
        const ingestRate = (BATCHES * BATCH_SIZE) / ((performance.now() - started) / 1000);
        const session = db.port.session().db;
        started = performance.now();
        await inParallel(BATCHES, CONCURRENCY, async (i) => {
          await session.insert(positions).values(
            pointsFor(i).map((p) => ({
              id: newId("pos"),
              app_id: appId,
              device_id: raw.id ?? "",
              timestamp: new Date(p.timestamp),
              latitude: p.latitude,
              longitude: p.longitude,
              speed: p.speed,
              accuracy: p.accuracy,
            })),
          );
        });
        const rawRate = (BATCHES * BATCH_SIZE) / ((performance.now() - started) / 1000);
        const ingestRss = rssMiB();

        // 230,000 points of one device, drawn as one simplified track.
        const long = (
          await call<{ data: Record<string, string> }>(base, "/v1/apps/bench/devices", {
            body: { name: "long" },
          })
        ).data;
        await session.execute(sql`
          insert into ${positions} (id, app_id, device_id, timestamp, latitude, longitude, speed)
          select 'pos_long_' || g, ${appId}, ${long.id}, timestamptz '2024-06-01' + g * interval '5 seconds',
                 52.5 + sin(g / 5000.0) / 20, 13.4 + cos(g / 7000.0) / 20, 1.4
          from generate_series(1, ${LONG_TRACK}) g`);
        await session.execute(sql`analyze ${positions}`);
        const longTimes: number[] = [];
        let drawn = 0;
        let read = 0;
        for (let i = 0; i < 3; i++) {
          await timed(longTimes, async () => {
            const res = await fetch(
              `${base}/v1/devices/${long.id}/track?from=2024-06-01T00:00:00Z&to=2024-06-15T00:00:00Z&simplify=10&max_points=5000`,
              { headers: { Authorization: `Bearer ${reader}` } },
            );
            if (!res.ok) throw new Error(`track: ${res.status} ${await res.text()}`);
            const track = (await res.json()) as {
              properties: { points: number; points_in_range: number };
            };
            drawn = track.properties.points;
            read = track.properties.points_in_range;
          });
        }
        const longMedian = percentile(longTimes, 50);

        const sections = [
          `## GPS on ${db.label}`,
          "",
          `Batch ingest: ${BATCHES} batches of ${BATCH_SIZE} points over HTTP by ${CONCURRENCY} concurrent clients (device secret, each batch acknowledged once stored), then the same rows by a raw multi-row insert through the same driver into the same database with the same concurrency.`,
          "",
          table(
            ["what", "figure"],
            [
              ["`POST /v1/gps/batch`", `${fmt(ingestRate)} points/s`],
              ["raw multi-row insert", `${fmt(rawRate)} rows/s`],
              ["ratio", `${fmt(ingestRate / rawRate, 2)}×`],
              ["RSS after ingest", `${ingestRss} MiB`],
            ],
          ),
          "",
          `A long track: ${fmt(LONG_TRACK)} points of one device (one every 5 s), \`GET /v1/devices/{id}/track?simplify=10&max_points=5000\` over the whole range, read, thinned with Douglas–Peucker and answered as GeoJSON (${fmt(read)} points read, ${fmt(drawn)} drawn). Median of 3: **${fmt(longMedian)} ms** (Dawarich's users report 28 s for 230,000 points, published, not measured here). RSS ${rssMiB()} MiB.`,
          "",
        ];

        if (kind === "postgres" && TRACK_ROWS > 0) {
          sections.push(...(await dayOfTrack(base, session, appId, reader)), "");
        } else if (kind === "postgres") {
          notRun("day-of-track", "BENCH_TRACK_ROWS=0");
          sections.push(
            "A day of one device's track out of 10,000,000 rows: **not run** (`BENCH_TRACK_ROWS=0` skips its seeding).",
            "",
          );
        }
        return sections.join("\n");
      } finally {
        await served.close();
        await db.dispose();
      }
    },
  };
}

/** A day of one device's track out of TRACK_ROWS rows (Postgres: seeded server-side). */
async function dayOfTrack(
  base: string,
  session: ReturnType<Awaited<ReturnType<typeof openBenchDatabase>>["port"]["session"]>["db"],
  appId: string,
  reader: string,
) {
  const ids: string[] = [];
  for (let i = 0; i < DEVICES; i++) {
    ids.push(
      (
        await call<{ data: { id: string } }>(base, "/v1/apps/bench/devices", {
          body: { name: `fleet-${i}` },
        })
      ).data.id,
    );
  }
  const perDevice = Math.floor(TRACK_ROWS / DEVICES);
  const started = performance.now();
  // A bulk load builds its indexes once at the end, as the migrations define them, and vacuums
  // the table, as one would load such a table (and as autovacuum does to one that grew).
  const indexes = (await session.execute(
    sql`select indexname, indexdef from pg_indexes where indexname in ('positions_app_time_idx', 'positions_device_time_key')`,
  )) as unknown as { rows: Array<{ indexname: string; indexdef: string }> };
  for (const { indexname } of indexes.rows) {
    await session.execute(sql`drop index ${sql.identifier(indexname)}`);
  }
  // One point every 10 s per device: a day is 8,640 points.
  await session.execute(sql`
    insert into ${positions} (id, app_id, device_id, timestamp, latitude, longitude, speed)
    select 'pos_fleet_' || d.n || '_' || g, ${appId}, d.id,
           timestamptz '2024-01-01' + g * interval '10 seconds',
           52.5 + sin(g / 500.0) / 50, 13.4 + cos(g / 700.0) / 50, 1.4
    from unnest(${sql.raw(`array[${ids.map((id) => `'${id}'`).join(",")}]`)}::text[]) with ordinality as d(id, n),
         generate_series(1, ${perDevice}) g`);
  for (const { indexdef } of indexes.rows) await session.execute(sql.raw(indexdef));
  await session.execute(sql`vacuum analyze ${positions}`);
  const seedSeconds = (performance.now() - started) / 1000;
  // Whole days of track every device has (ten at 10,000,000 rows), or the first one.
  const coveredDays = Math.max(1, Math.min(10, Math.floor((perDevice * 10) / 86_400) - 1));
  const dayOf = async (device: string, day: number) => {
    const from = `2024-01-${String(day).padStart(2, "0")}T00:00:00Z`;
    const to = `2024-01-${String(day + 1).padStart(2, "0")}T00:00:00Z`;
    const res = await fetch(
      `${base}/v1/devices/${device}/track?from=${from}&to=${to}&simplify=5&max_points=2000`,
      { headers: { Authorization: `Bearer ${reader}` } },
    );
    if (!res.ok) throw new Error(`track: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { properties: { points_in_range: number } }).properties
      .points_in_range;
  };
  // Each (device, day) is asked for once (with more than one covered day): the warm-up (the route's first calls, which pay the
  // JIT) on the last covered day, the measured requests on the others, so none is a repeat whose
  // pages a previous request brought into the cache.
  const measuredDays = Math.max(1, coveredDays - 1);
  const requests = Math.min(DAY_REQUESTS, ids.length * measuredDays);
  for (let i = 0; i < Math.min(DAY_WARMUP, ids.length); i++) {
    await dayOf(ids[i] as string, coveredDays);
  }
  const times: number[] = [];
  let read = 0;
  for (let i = 0; i < requests; i++) {
    const device = ids[(i * 37) % ids.length] as string;
    const day = 1 + (Math.floor(i / ids.length) % measuredDays);
    await timed(times, async () => {
      read = await dayOf(device, day);
    });
  }
  const p95 = percentile(times, 95);
  return [
    `A day of one device's track out of ${fmt(perDevice * DEVICES)} rows (${DEVICES} devices, one point every 10 s, seeded with \`generate_series\` in ${fmt(seedSeconds)} s): \`GET /v1/devices/{id}/track?from&to&simplify=5&max_points=2000\` for one day (${fmt(read)} points read) after ${DAY_WARMUP} warm-up requests, ${requests} requests, each of a different device and day: p50 ${fmt(percentile(times, 50), 1)} ms, **p95 ${fmt(p95, 1)} ms** (${meet("day-of-track", p95, TRACK_ROWS === 10_000_000 ? "" : `${fmt(perDevice * DEVICES)} rows, not 10,000,000`)}). RSS ${rssMiB()} MiB.`,
  ];
}
