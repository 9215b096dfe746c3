import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { testEnv } from "../support/app";
import { readJson } from "../support/http";
import { bearer, createDevices, createTenant, overHttp } from "../support/identity";
import { type RunningServer, startNodeServer } from "../support/node-server";
import { createTestDatabase } from "../support/postgres";
import { announceSkip, services } from "../support/services";

/** Points per batch; batch `b` holds the points of seconds `b * SIZE … b * SIZE + SIZE - 1`. */
const SIZE = 100;
const CLIENTS = 8;
/** How long the load runs before the server is killed. */
const LOAD_MS = 1500;
const BASE = Date.parse("2025-01-01T00:00:00Z");

const timeOf = (batch: number, index: number) => new Date(BASE + (batch * SIZE + index) * 1000);
const batchOf = (timestamp: Date) => Math.floor((timestamp.getTime() - BASE) / 1000 / SIZE);

const pointsOf = (batch: number) =>
  Array.from({ length: SIZE }, (_, index) => ({
    timestamp: timeOf(batch, index).toISOString(),
    latitude: 48 + index / 1000,
    longitude: 11 + batch / 100_000,
  }));

interface Sent {
  device: string;
  /** The server answered 2xx: every point of it must be stored. */
  acked: boolean;
}

/** The Node entry's settings for these runs, on the database the caller names. */
const entryEnv = (database: Record<string, string>) => ({ ...testEnv, ...database });

/**
 * Loads the server with concurrent clients posting batches of distinct points (one device each),
 * SIGKILLs it mid-load, and answers what was sent and acknowledged.
 */
async function ingestUntilKilled(server: RunningServer) {
  const api = overHttp(server.url);
  const tenant = await createTenant(api, "crash");
  const devices = await createDevices(api, tenant, CLIENTS);

  const sent = new Map<number, Sent>();
  const answered: number[] = [];
  let next = 0;
  let pending = 0;
  let killed = false;
  const client = async (device: { id: string; secret: string }) => {
    while (!killed) {
      const batch = next++;
      const record: Sent = { device: device.id, acked: false };
      sent.set(batch, record);
      pending++;
      try {
        const res = await fetch(`${server.url}/v1/gps/batch`, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...bearer(device.secret) },
          body: JSON.stringify({ points: pointsOf(batch) }),
        });
        pending--;
        answered.push(res.status);
        record.acked = res.status >= 200 && res.status < 300;
        // The body may be cut by the kill; the status line is the acknowledgement.
        await res.arrayBuffer().catch(() => undefined);
      } catch {
        return; // the connection died with the server: this batch is unacknowledged
      }
    }
  };
  const load = Promise.all(devices.map(client));
  await new Promise((resolve) => setTimeout(resolve, LOAD_MS));
  const inFlight = pending;
  await server.kill("SIGKILL");
  killed = true;
  await load;
  // Every answer before the kill was a success: a 5xx under load would be a finding of its own.
  expect(answered.filter((status) => status !== 200)).toEqual([]);
  return { devices, sent, inFlight };
}

/**
 * Checks the stored rows against what was sent: every acknowledged batch whole, every batch
 * whole or absent, nothing that was never sent. Prints the figures.
 */
function checkStored(
  label: string,
  { sent, inFlight }: { sent: Map<number, Sent>; inFlight: number },
  rows: Array<{ device_id: string; timestamp: Date }>,
) {
  const found = new Map<number, number>();
  const strays: string[] = [];
  for (const row of rows) {
    const batch = batchOf(row.timestamp);
    if (sent.get(batch)?.device !== row.device_id) {
      strays.push(`${row.device_id} ${row.timestamp.toISOString()}`);
    }
    found.set(batch, (found.get(batch) ?? 0) + 1);
  }
  const acked = [...sent].filter(([, s]) => s.acked).map(([batch]) => batch);
  const missing = acked.filter((batch) => found.get(batch) !== SIZE);
  const half = [...found].filter(([, count]) => count !== SIZE).map(([batch]) => batch);
  const storedUnacked = [...found.keys()].filter((batch) => !sent.get(batch)?.acked).length;
  console.log(
    `[crash] ${label}: ${sent.size} batches sent (${SIZE} points each, ${inFlight} in flight at the kill), ${acked.length} acknowledged (${acked.length * SIZE} points), ${rows.length} points found, ${found.size} batches stored (${storedUnacked} of them unacknowledged), ${missing.length} acknowledged batches missing, ${half.length} half batches`,
  );
  expect(acked.length).toBeGreaterThan(0);
  expect(strays).toEqual([]);
  expect(missing).toEqual([]);
  expect(half).toEqual([]);
}

/** The restarted server takes a new batch and stores all of it. */
async function expectServes(server: RunningServer, device: { secret: string }, batch: number) {
  const res = await fetch(`${server.url}/v1/gps/batch`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...bearer(device.secret) },
    body: JSON.stringify({ points: pointsOf(batch) }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  expect((await readJson(res)).data).toMatchObject({ stored: SIZE, duplicates: 0 });
}

/** Crash safety of GPS ingest: the Node entry SIGKILLed under batch load, then restarted. */
describe("crash safety: SIGKILL mid-ingest", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it("on Postgres: every acknowledged point is stored, no batch is half stored, and the restarted server ingests", async (context) => {
    if (!services.postgres) {
      announceSkip("crash safety on real Postgres", "TEST_DATABASE_URL");
      context.skip();
      return;
    }
    const database = await createTestDatabase(services.postgres);
    cleanup.push(database.drop);
    const env = entryEnv({ DATABASE_URL: database.url });
    const run = await ingestUntilKilled(await startNodeServer(env));

    const restarted = await startNodeServer(env);
    cleanup.push(() => restarted.stop());
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    cleanup.push(() => client.end());
    const stored = await client.query<{ device_id: string; timestamp: Date }>(
      "SELECT device_id, timestamp FROM positions",
    );
    checkStored("postgres", run, stored.rows);

    const after = run.sent.size + 1;
    await expectServes(restarted, run.devices[0]!, after);
    const count = await client.query(
      "SELECT count(*)::int AS n FROM positions WHERE timestamp >= $1",
      [timeOf(after, 0)],
    );
    expect(count.rows[0].n).toBe(SIZE);
  });

  it("on PGlite (DATA_DIR): the embedded database reopens after the kill with every acknowledged point and no half batch", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-crash-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const env = entryEnv({ DATA_DIR: dataDir });
    const run = await ingestUntilKilled(await startNodeServer(env));

    // PGlite lives in the killed process: this start is its crash recovery.
    const restarted = await startNodeServer(env);
    const after = run.sent.size + 1;
    try {
      await expectServes(restarted, run.devices[0]!, after);
    } finally {
      expect(await restarted.stop()).toBe(0);
    }

    const store = await PGlite.create(join(dataDir, "pglite"));
    try {
      const stored = await store.query<{ device_id: string; timestamp: Date }>(
        "SELECT device_id, timestamp FROM positions WHERE timestamp < $1",
        [timeOf(after, 0)],
      );
      checkStored("pglite", run, stored.rows);
      const count = await store.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM positions WHERE timestamp >= $1",
        [timeOf(after, 0)],
      );
      expect(count.rows[0]?.n).toBe(SIZE);
    } finally {
      await store.close();
    }
  });
});
