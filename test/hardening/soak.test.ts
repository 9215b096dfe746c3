import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { testEnv } from "../support/app";
import { readJson } from "../support/http";
import {
  bearer,
  createDevices,
  createTenant,
  overHttp,
  PASSWORD,
  send,
  type Tenant,
} from "../support/identity";
import { type RunningServer, startNodeServer } from "../support/node-server";
import { createTestDatabase } from "../support/postgres";
import { announceSkip, services } from "../support/services";
import { startUpstashRest } from "../support/upstash-rest";

/**
 * The issue's soak is 60 s (`SOAK_SECONDS` overrides). It runs in full on Postgres + Redis when
 * they are present (always in CI) and on PGlite when they are not; next to them, PGlite gets a
 * 15-s smoke soak, so CI spends one full soak, not two.
 */
const SOAK_SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const PGLITE_SECONDS = services.postgres ? Math.min(15, SOAK_SECONDS) : SOAK_SECONDS;
const WARM_UP_MS = 3000;
const CONCURRENCY = 50;
const SUBSCRIBERS = 20;
const DEVICES = 10;

const MiB = 1024 * 1024;
/**
 * More than this kept per request, over the second half of a full soak, is a leak. The heap is
 * read with no request in flight, after a full GC: on a 2-core machine at load 15 (28 requests/s
 * on PGlite) it stayed within 0.4 MiB, 33 bytes per request, and with another process spinning
 * a core (13 requests/s) -383; 2 KiB kept per request measured 2,001–2,184 and failed.
 */
const LEAKED_BYTES_PER_REQUEST = 1024;

/** Resident memory of a process (Linux). */
function rssBytes(pid: number) {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kib) * 1024;
}

/**
 * The V8 heap of a server process, through its inspector: opened by SIGUSR1 (the server runs
 * with `--inspect-port=0`, so on a free port, which it prints). `usedAfterGc` forces a full
 * collection first, so what it answers is what the process still holds, whatever the load.
 */
async function inspectHeap(server: RunningServer) {
  process.kill(server.pid, "SIGUSR1");
  let url: string | undefined;
  const deadline = Date.now() + 10_000;
  while (!url && Date.now() < deadline) {
    url = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(server.output())?.[1];
    if (!url) await sleep(50);
  }
  if (!url) throw new Error(`the server opened no inspector:\n${server.output()}`);
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let id = 0;
  const pending = new Map<number, (result: unknown) => void>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data));
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  });
  const command = (method: string) =>
    new Promise<unknown>((resolve) => {
      pending.set(++id, resolve);
      socket.send(JSON.stringify({ id, method }));
    });
  return {
    async usedAfterGc() {
      await command("HeapProfiler.collectGarbage");
      return ((await command("Runtime.getHeapUsage")) as { usedSize: number }).usedSize;
    },
    close: () => socket.close(),
  };
}

/** The least-squares slope of `y` over `x`. */
function slope(points: Array<{ x: number; y: number }>) {
  const n = points.length;
  const mx = points.reduce((sum, p) => sum + p.x, 0) / n;
  const my = points.reduce((sum, p) => sum + p.y, 0) / n;
  const covariance = points.reduce((sum, p) => sum + (p.x - mx) * (p.y - my), 0);
  const variance = points.reduce((sum, p) => sum + (p.x - mx) ** 2, 0);
  return covariance / variance;
}

/**
 * The process's sockets: all of them, and its TCP connections on `port` (accepted from
 * clients), from its file descriptors and the kernel's TCP tables.
 */
function socketsOf(pid: number, port: number) {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith("socket:[")) inodes.add(target.slice(8, -1));
    } catch {
      // closed while we read
    }
  }
  let inbound = 0;
  for (const table of ["tcp", "tcp6"]) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [local, state, inode] = [fields[1], fields[3], fields[9]];
      if (!local || !inode || state === "0A") continue; // 0A: listening
      if (Number.parseInt(local.split(":")[1] ?? "", 16) === port && inodes.has(inode)) inbound++;
    }
  }
  return { total: inodes.size, inbound };
}

/** One HTTP request over the soak's own keep-alive agent; answers the status and body. */
function call(
  agent: http.Agent,
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      new URL(path, base),
      {
        method,
        agent,
        headers:
          payload === undefined ? headers : { ...headers, "Content-Type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** A live subscriber of the app's `gps` channel (ticket in the URL), counting positions. */
async function subscribe(wsBase: string, ticket: string) {
  const socket = new WebSocket(`${wsBase}/v1/ws?ticket=${ticket}`);
  const ids = new Set<string>();
  const errors: unknown[] = [];
  let closed = false;
  socket.on("close", () => {
    closed = true;
  });
  await new Promise<void>((resolve, reject) => {
    socket.on("message", (data) => {
      const message = JSON.parse(String(data));
      if (message.type === "Subscribed") resolve();
      else if (message.type === "Position") ids.add(message.data.id);
      else if (message.type === "Error") {
        errors.push(message);
        reject(new Error(`subscriber: ${JSON.stringify(message)}`)); // no-op once subscribed
      }
    });
    socket.once("open", () => socket.send(JSON.stringify({ type: "Subscribe", channel: "gps" })));
    socket.once("error", reject);
  });
  return {
    ids,
    errors,
    closed: () => closed,
    close: () =>
      new Promise<void>((resolve) => {
        socket.once("close", () => resolve());
        socket.close();
      }),
  };
}

type Kind = "login" | "authorize" | "ingest" | "current" | "track";
/** The mix, one slot per request: each worker walks it from its own offset. */
const MIX: Kind[] = [
  "ingest",
  "authorize",
  "current",
  "ingest",
  "authorize",
  "login",
  "ingest",
  "authorize",
  "track",
];
const EXPECTED: Record<Kind, number> = {
  login: 200,
  authorize: 200,
  ingest: 201,
  current: 200,
  track: 200,
};

interface Stats {
  statuses: Map<Kind, Map<number, number>>;
  networkErrors: string[];
  /** Answers other than the kind's success (the status, or `allowed` false for authorize). */
  unexpected: string[];
  ingested: Set<string>;
}

type Device = { id: string; secret: string };

/** The soak's traffic against one running server. */
function trafficFor(base: string, tenant: Tenant, devices: Device[], agent: http.Agent) {
  const from = new Date(Date.now() - 7 * 86_400_000);
  from.setUTCMinutes(0, 0, 0);
  const trackRange = `from=${from.toISOString()}&to=${new Date(from.getTime() + 600_000).toISOString()}`;
  let point = 0;
  let answered = 0;
  let inFlight = 0;
  let paused: Promise<void> | undefined;
  const admin = bearer(tenant.admin.accessToken);
  const requests: Record<Kind, () => Promise<{ status: number; text: string }>> = {
    login: () =>
      call(
        agent,
        base,
        "POST",
        `/v1/apps/${tenant.app.name}/tokens`,
        {},
        {
          grant_type: "password",
          email: point % 2 ? tenant.admin.email : tenant.reader.email,
          password: PASSWORD,
        },
      ),
    authorize: () =>
      call(
        agent,
        base,
        "POST",
        "/v1/authorize",
        {},
        {
          token: tenant.admin.accessToken,
          permission: "gps:read",
        },
      ),
    ingest: () => {
      // One second apart per device: every point is distinct, and none is in the future.
      const n = point++;
      const device = devices[n % DEVICES]!;
      return call(agent, base, "POST", "/v1/gps", bearer(device.secret), {
        timestamp: new Date(from.getTime() + Math.floor(n / DEVICES) * 1000).toISOString(),
        latitude: 52.5 + (n % 1000) / 10_000,
        longitude: 13.4,
      });
    },
    current: () => call(agent, base, "GET", "/v1/gps/current", admin),
    track: () =>
      call(
        agent,
        base,
        "GET",
        `/v1/devices/${devices[point % DEVICES]!.id}/track?${trackRange}`,
        admin,
      ),
  };

  /** Runs `CONCURRENCY` workers over the mix for `ms`, counting every answer. */
  async function run(ms: number): Promise<Stats & { total: number }> {
    const stats: Stats = {
      statuses: new Map(),
      networkErrors: [],
      unexpected: [],
      ingested: new Set(),
    };
    const deadline = Date.now() + ms;
    let total = 0;
    const worker = async (offset: number) => {
      for (let i = offset; Date.now() < deadline; i++) {
        while (paused) await paused;
        const kind = MIX[i % MIX.length]!;
        total++;
        let answer: { status: number; text: string };
        inFlight++;
        try {
          answer = await requests[kind]();
        } catch (error) {
          stats.networkErrors.push(`${kind}: ${(error as Error).message}`);
          continue;
        } finally {
          inFlight--;
        }
        answered++;
        const byStatus = stats.statuses.get(kind) ?? new Map<number, number>();
        byStatus.set(answer.status, (byStatus.get(answer.status) ?? 0) + 1);
        stats.statuses.set(kind, byStatus);
        const ok =
          answer.status === EXPECTED[kind] &&
          (kind !== "authorize" || JSON.parse(answer.text).allowed === true);
        if (!ok) stats.unexpected.push(`${kind} ${answer.status}: ${answer.text.slice(0, 200)}`);
        else if (kind === "ingest") stats.ingested.add(JSON.parse(answer.text).data.id);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => worker(i)));
    return { ...stats, total };
  }
  /**
   * Holds the workers, and once no request is in flight runs `measure`: what the server holds
   * then is no request's working memory.
   */
  async function between<T>(measure: () => Promise<T>): Promise<T> {
    let resume = () => {};
    paused = new Promise((resolve) => {
      resume = resolve;
    });
    try {
      while (inFlight > 0) await sleep(5);
      return await measure();
    } finally {
      paused = undefined;
      resume();
    }
  }
  /** `run`; how many answers every run so far has had; `between`. */
  return Object.assign(run, { answered: () => answered, between });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The soak on one backend: a warm-up, then `seconds` of the mix at concurrency 50 with 20 live
 * subscribers; asserts no 5xx (no unexpected answer at all) and no network error, every
 * subscriber receiving every position, RSS bounded, and the server's sockets (its client
 * connections within 5 s) back to their count before the soak once the clients close.
 */
async function soak(label: string, server: RunningServer, seconds: number) {
  const port = Number(new URL(server.url).port);
  const base = `http://127.0.0.1:${port}`;
  const api = overHttp(base);
  const tenant = await createTenant(api, "soak");
  const devices = await createDevices(api, tenant, DEVICES);
  const sockets = { before: socketsOf(server.pid, port), after: { total: 0, inbound: 0 } };

  const subscribers = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const res = await send(api, "POST", "/v1/ws/ticket", {
      headers: bearer(tenant.admin.accessToken),
    });
    expect(res.status).toBe(201);
    subscribers.push(
      await subscribe(base.replace(/^http/, "ws"), (await readJson(res)).data.ticket),
    );
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const run = trafficFor(base, tenant, devices, agent);
  const warmUp = await run(WARM_UP_MS);
  const heap = await inspectHeap(server);
  const started = Date.now();
  const since = () => (Date.now() - started) / 1000;
  const rss = [{ at: 0, bytes: rssBytes(server.pid) }];
  const heaps: Array<{ at: number; requests: number; bytes: number }> = [];
  const sample = async () => {
    rss.push({ at: since(), bytes: rssBytes(server.pid) });
    const bytes = await run.between(() => heap.usedAfterGc());
    heaps.push({ at: since(), requests: run.answered(), bytes });
  };
  await sample();
  let loading = true;
  const sampler = (async () => {
    // Each sample holds the traffic while the heap is read: every 10 s, not 5.
    for (let next = 10_000; loading; next += 10_000) {
      await sleep(Math.max(0, started + next - Date.now()));
      if (loading) await sample();
    }
  })();
  const load = await run(seconds * 1000).finally(() => {
    loading = false;
  });
  const elapsed = (Date.now() - started) / 1000;
  await sampler;
  await sample();
  heap.close();
  const during = socketsOf(server.pid, port);

  // Positions are published after the answer: let the last ones arrive.
  const ingested = new Set([...warmUp.ingested, ...load.ingested]);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && subscribers.some((s) => s.ids.size < ingested.size)) {
    await sleep(100);
  }
  const received = subscribers.map((s) => [...ingested].filter((id) => s.ids.has(id)).length);
  const closedEarly = subscribers.filter((s) => s.closed()).length;
  const subscriberErrors = subscribers.flatMap((s) => s.errors);

  // The clients' connections close at once; the server's own idle ones (node-postgres's pool
  // after 10 s, keep-alive connections to Upstash after 5 s) later. Either way, back to the
  // count before the soak.
  agent.destroy();
  await Promise.all(subscribers.map((s) => s.close()));
  const closing = Date.now();
  const settled = { inbound: Number.NaN, total: Number.NaN };
  while (Date.now() - closing < 15_000) {
    sockets.after = socketsOf(server.pid, port);
    const waited = Date.now() - closing;
    if (Number.isNaN(settled.inbound) && sockets.after.inbound <= sockets.before.inbound) {
      settled.inbound = waited;
    }
    if (sockets.after.total <= sockets.before.total) {
      settled.total = waited;
      break;
    }
    await sleep(100);
  }

  const start = rss[0]?.bytes ?? 0;
  const end = rss.at(-1)?.bytes ?? 0;
  const mid = rss.find((s) => s.at >= seconds / 2)?.bytes ?? end;
  // The second half: warm-up is over (caches, pools and V8's code are in place).
  const settledHeaps = heaps.filter((s) => s.at >= seconds / 2);
  const perRequest = slope(settledHeaps.map((s) => ({ x: s.requests, y: s.bytes })));
  const grown =
    perRequest * ((settledHeaps.at(-1)?.requests ?? 0) - (settledHeaps[0]?.requests ?? 0));
  const histogram = [...load.statuses]
    .map(([kind, byStatus]) => `${kind} ${[...byStatus].map(([s, n]) => `${s}×${n}`).join(" ")}`)
    .join(", ");
  console.log(
    [
      `[soak] ${label}: ${load.total} requests in ${elapsed.toFixed(1)} s (${Math.round(load.total / elapsed)}/s) at concurrency ${CONCURRENCY}, after a ${WARM_UP_MS / 1000}-s warm-up of ${warmUp.total}`,
      `  by kind and status: ${histogram}; network errors ${load.networkErrors.length + warmUp.networkErrors.length}`,
      `  ${SUBSCRIBERS} subscribers received ${Math.min(...received)}–${Math.max(...received)} of ${ingested.size} positions; closed early ${closedEarly}`,
      `  RSS start ${(start / MiB).toFixed(0)} MiB, half-way ${(mid / MiB).toFixed(0)} MiB, end ${(end / MiB).toFixed(0)} MiB (every 5 s: ${rss.map((s) => (s.bytes / MiB).toFixed(0)).join(" ")})`,
      `  heap after a full GC, every 10 s: ${heaps.map((s) => (s.bytes / MiB).toFixed(1)).join(" ")} MiB; second half ${perRequest.toFixed(0)} bytes per request over ${settledHeaps.length} samples (${(grown / MiB).toFixed(2)} MiB)`,
      `  server sockets: before ${sockets.before.inbound} client connections (${sockets.before.total} sockets in all), under load ${during.inbound} (${during.total}), after ${sockets.after.inbound} (${sockets.after.total}); client connections back in ${settled.inbound} ms, all sockets in ${settled.total} ms`,
    ].join("\n"),
  );

  expect([...warmUp.networkErrors, ...load.networkErrors]).toEqual([]);
  expect([...warmUp.unexpected, ...load.unexpected].slice(0, 10)).toEqual([]);
  for (const [kind, status] of Object.entries(EXPECTED)) {
    expect(load.statuses.get(kind as Kind)?.get(status)).toBeGreaterThan(0);
  }
  expect(subscriberErrors).toEqual([]);
  expect(closedEarly).toBe(0);
  expect(received).toEqual(received.map(() => ingested.size));
  // RSS after the 3-s warm-up is not yet the working set: V8 keeps enlarging its heap, the
  // connection pools and PGlite's WebAssembly memory (shared buffers, never given back) fill.
  // Measured on this machine: +40–90 % over the first 15–40 s, then flat within a few MiB. So the
  // whole soak may at most double it (plus 50 MiB): a ceiling, not the leak check.
  expect(end).toBeLessThanOrEqual(start * 2 + 50 * MiB);
  // The leak check: what the heap still holds after a full GC, against the requests answered
  // over the second half of a full soak. RSS (when V8 collects, how far it lets the heap grow)
  // and the request rate follow the machine's load; bytes kept per request do not. A smoke soak
  // ends while the working set is still filling, so it is not checked.
  if (seconds >= 30) {
    expect(settledHeaps.length).toBeGreaterThanOrEqual(3);
    // Below the heap's own jitter (0.4 MiB seen), a slope is noise: few requests on a busy box.
    if (grown > 512 * 1024) expect(perRequest).toBeLessThanOrEqual(LEAKED_BYTES_PER_REQUEST);
  }
  expect(settled.inbound).toBeLessThanOrEqual(5000);
  expect(sockets.after.total).toBeLessThanOrEqual(sockets.before.total);
}

/** The server opens its inspector on SIGUSR1, on a free port: `inspectHeap` reads its heap. */
const inspectable = { NODE_OPTIONS: "--inspect-port=0" };

/** A bounded soak of mixed traffic against the Node entry as its own process. */
describe("soak: mixed traffic at concurrency 50", () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it(`on PGlite (${PGLITE_SECONDS} s): no 5xx, every subscriber fed, RSS stable, no leaked sockets`, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-soak-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startNodeServer({ ...testEnv, ...inspectable, DATA_DIR: dataDir });
    cleanup.push(() => server.stop());
    await soak("pglite", server, PGLITE_SECONDS);
  });

  it(`on Postgres and Redis (${SOAK_SECONDS} s): no 5xx, every subscriber fed, RSS stable, no leaked sockets`, async (context) => {
    if (!services.postgres) {
      announceSkip("soak on Postgres and Redis", "TEST_DATABASE_URL");
      context.skip();
      return;
    }
    const database = await createTestDatabase(services.postgres);
    cleanup.push(database.drop);
    const env: Record<string, string> = {
      ...testEnv,
      ...inspectable,
      DATABASE_URL: database.url,
    };
    if (services.redis) {
      // Redis twice over, as in production: the live fan-out, and Upstash for revocations.
      const upstash = await startUpstashRest({ redisUrl: services.redis });
      cleanup.push(() => upstash.close());
      Object.assign(env, {
        REDIS_URL: services.redis,
        UPSTASH_REDIS_REST_URL: upstash.url,
        UPSTASH_REDIS_REST_TOKEN: upstash.token,
      });
    } else {
      announceSkip("soak on Redis", "TEST_REDIS_URL");
    }
    const server = await startNodeServer(env);
    cleanup.push(() => server.stop());
    await soak(services.redis ? "postgres + redis" : "postgres", server, SOAK_SECONDS);
  });
});
