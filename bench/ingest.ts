/**
 * `npm run bench`: GPS ingest throughput over HTTP next to a raw multi-row insert into the same
 * database in the same run, and history query latency over 1,000,000 stored points. Writes
 * `bench/results.md`. Uses Postgres when BENCH_DATABASE_URL (or TEST_DATABASE_URL) is set,
 * otherwise embedded PGlite.
 */

import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { sql } from "drizzle-orm";
import pg from "pg";
import { createConsoleLogger } from "../src/adapters/console-logger";
import { createIdentityPorts } from "../src/adapters/identity";
import { createMemoryLimiter } from "../src/adapters/memory/limiter";
import { createMemoryRealtime } from "../src/adapters/memory/realtime";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { createPgliteDatabase } from "../src/adapters/pglite/database";
import { createPostgresDatabase } from "../src/adapters/postgres/database";
import { systemClock } from "../src/adapters/system-clock";
import { createApp } from "../src/app";
import { parseConfig } from "../src/config";
import { positions } from "../src/db/schema";
import { sha256Hex } from "../src/lib/crypto";
import { newId } from "../src/lib/ids";
import type { DatabasePort, Ports } from "../src/ports";
import { noErrorReporter } from "../src/ports/error-reporter";
import { noGeoIp } from "../src/ports/geoip";

const BATCHES = Number(process.env.BENCH_BATCHES ?? 60);
const BATCH_SIZE = 1000;
const CONCURRENCY = 4;
const HISTORY_ROWS = Number(process.env.BENCH_HISTORY_ROWS ?? 1_000_000);
const migrationsFolder = fileURLToPath(new URL("../drizzle", import.meta.url));
const adminKey = "hk_admin_bench_0123456789abcdefghijkl";

async function openDatabase(): Promise<{
  port: DatabasePort;
  label: string;
  dispose(): Promise<void>;
}> {
  const server = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!server) {
    const port = await createPgliteDatabase({ dataDir: "memory://", migrationsFolder });
    return { port, label: "PGlite (embedded, in memory)", dispose: () => port.close() };
  }
  const name = `heimdall_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  const port = await createPostgresDatabase({ url: url.toString(), migrationsFolder });
  return {
    port,
    label: `PostgreSQL at ${url.host} (node-postgres)`,
    async dispose() {
      await port.close();
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

function pointsFor(batch: number, deviceId?: string) {
  const start = Date.parse("2025-01-01T00:00:00Z") + batch * BATCH_SIZE * 1000;
  return Array.from({ length: BATCH_SIZE }, (_, i) => ({
    ...(deviceId ? { device_id: deviceId } : {}),
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

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function main() {
  const db = await openDatabase();
  const config = parseConfig({
    APP_ENV: "production",
    LOG_LEVEL: "silent",
    ADMIN_API_KEY: adminKey,
    KEY_ENCRYPTION_SECRET: "bench-key-encryption-secret-0123456789abcdef",
    RATE_LIMIT_ENABLED: "false",
    PUBLIC_URL: "http://127.0.0.1",
  });
  const clock = systemClock;
  const logger = createConsoleLogger({ level: "silent" });
  const revocations = createMemoryRevocationStore(clock);
  const ports: Ports = {
    config,
    db: db.port,
    clock,
    logger,
    revocations,
    limiter: createMemoryLimiter(clock),
    realtime: createMemoryRealtime(),
    ...createIdentityPorts(
      config,
      {
        adminKeyHash: await sha256Hex(adminKey),
        keyEncryptionSecret: config.KEY_ENCRYPTION_SECRET ?? "",
      },
      clock,
      revocations,
      logger,
    ),
    clientIp: () => undefined,
    geoip: noGeoIp,
    errors: noErrorReporter,
  };
  const app = createApp(ports);
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise((resolve) => server.once("listening", resolve));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const call = async (path: string, init: RequestInit & { token?: string } = {}) => {
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: {
        "Content-Type": "application/json",
        Authorization: `Bearer ${init.token ?? adminKey}`,
      },
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<{ data: Record<string, string> }>;
  };

  await call("/v1/apps", {
    method: "POST",
    body: JSON.stringify({ name: "bench", display_name: "Bench" }),
  });
  const device = (
    await call("/v1/apps/bench/devices", {
      method: "POST",
      body: JSON.stringify({ name: "tracker" }),
    })
  ).data;
  const rawDevice = (
    await call("/v1/apps/bench/devices", { method: "POST", body: JSON.stringify({ name: "raw" }) })
  ).data;
  const appId = device.app_id ?? "";
  const apiKey = (
    await call("/v1/apps/bench/api-keys", {
      method: "POST",
      body: JSON.stringify({ name: "bench", role: "api-read-only" }),
    })
  ).data.key;

  // 1. Batch ingest over HTTP, acknowledged once stored.
  await call("/v1/gps/batch", {
    method: "POST",
    token: device.secret,
    body: JSON.stringify({ points: pointsFor(10_000) }),
  });
  let started = performance.now();
  await inParallel(BATCHES, CONCURRENCY, async (i) => {
    await call("/v1/gps/batch", {
      method: "POST",
      token: device.secret,
      body: JSON.stringify({ points: pointsFor(i) }),
    });
  });
  const ingestSeconds = (performance.now() - started) / 1000;
  const ingestRate = (BATCHES * BATCH_SIZE) / ingestSeconds;

  // 2. The same rows through a raw multi-row insert, same driver, same database, same concurrency.
  const session = db.port.session().db;
  started = performance.now();
  await inParallel(BATCHES, CONCURRENCY, async (i) => {
    await session.insert(positions).values(
      pointsFor(i).map((p) => ({
        id: newId("pos"),
        app_id: appId,
        device_id: rawDevice.id ?? "",
        timestamp: new Date(p.timestamp),
        latitude: p.latitude,
        longitude: p.longitude,
        speed: p.speed,
        accuracy: p.accuracy,
      })),
    );
  });
  const rawSeconds = (performance.now() - started) / 1000;
  const rawRate = (BATCHES * BATCH_SIZE) / rawSeconds;

  // 3. History over 1,000,000 stored points of one device.
  const big = (
    await call("/v1/apps/bench/devices", { method: "POST", body: JSON.stringify({ name: "big" }) })
  ).data;
  started = performance.now();
  await session.execute(sql`
    insert into ${positions} (id, app_id, device_id, timestamp, latitude, longitude, speed)
    select 'pos_bench_' || g, ${appId}, ${big.id}, timestamp '2024-01-01' + g * interval '1 second',
           52.5 + sin(g / 1000.0) / 100, 13.4 + cos(g / 1000.0) / 100, 1.4
    from generate_series(1, ${HISTORY_ROWS}) g`);
  const seedSeconds = (performance.now() - started) / 1000;
  const historyTimes: number[] = [];
  const trackTimes: number[] = [];
  const days = Math.max(1, Math.min(10, Math.floor(HISTORY_ROWS / 86_400)));
  for (let i = 0; i < 21; i++) {
    const day = 1 + (i % days);
    const from = `2024-01-${String(day).padStart(2, "0")}T06:00:00Z`;
    const to = `2024-01-${String(day).padStart(2, "0")}T07:00:00Z`;
    let t = performance.now();
    await call(`/v1/gps?device_id=${big.id}&from=${from}&to=${to}&limit=100`, { token: apiKey });
    historyTimes.push(performance.now() - t);
    t = performance.now();
    await fetch(
      `${base}/v1/devices/${big.id}/track?from=${from}&to=${to}&simplify=5&max_points=1000`,
      {
        headers: { Authorization: `Bearer ${adminKey}` },
      },
    ).then((r) => r.text());
    trackTimes.push(performance.now() - t);
  }

  server.close();
  await db.dispose();

  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const lines = [
    "# Benchmarks",
    "",
    `Run: \`npm run bench\` on ${new Date().toISOString()}; ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`,
    `Database: ${db.label}. Load: ${CONCURRENCY} concurrent HTTP clients on loopback, in the bench process.`,
    "",
    "## GPS ingest",
    "",
    "| what | figure |",
    "|---|---|",
    `| \`POST /v1/gps/batch\` (${BATCHES} × ${BATCH_SIZE} points, device secret, acknowledged once stored) | ${Math.round(ingestRate).toLocaleString("en")} points/s |`,
    `| raw multi-row insert, same rows, same driver and database | ${Math.round(rawRate).toLocaleString("en")} rows/s |`,
    `| ratio (target ≥ 0.5) | ${(ingestRate / rawRate).toFixed(2)}× |`,
    "",
    `## History over ${HISTORY_ROWS.toLocaleString("en")} points of one device`,
    "",
    `Seeded in ${seedSeconds.toFixed(1)} s with \`generate_series\`. Median of 21 requests over HTTP:`,
    "",
    "| query | median |",
    "|---|---|",
    `| \`GET /v1/gps?device_id&from&to&limit=100\` (one hour) | ${median(historyTimes).toFixed(1)} ms |`,
    `| \`GET /v1/devices/{id}/track?simplify=5&max_points=1000\` (one hour: 3,601 points read, simplified) | ${median(trackTimes).toFixed(1)} ms |`,
    "",
  ];
  const report = lines.join("\n");
  writeFileSync(new URL("./results.md", import.meta.url), report);
  console.log(report);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
