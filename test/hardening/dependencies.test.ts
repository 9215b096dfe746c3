import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminHeaders, testEnv } from "../support/app";
import { expectError, type HttpResponse, readJson } from "../support/http";
import {
  bearer,
  createTenant,
  PASSWORD,
  type Requester,
  send,
  signIn,
  type Tenant,
} from "../support/identity";
import { type RunningServer, startNodeServer } from "../support/node-server";
import { createTestDatabase } from "../support/postgres";
import { announceSkip, services } from "../support/services";
import { type ProxyMode, startTcpProxy, type TcpProxy } from "../support/tcp-proxy";
import { startUpstashRest } from "../support/upstash-rest";

/**
 * Dependencies failing: `npm start`'s entry, a real process, reaches Postgres or the Upstash
 * endpoint through a TCP proxy that the test turns `down` (port closed, connections cut) or into a
 * `blackhole` (connections accepted, never answered), then back up; the servers are not touched.
 * PGlite is embedded (in the process, no network), so it has no outage to simulate: this suite
 * needs the real servers and announces a skip without them (CI always has them).
 */

/**
 * The longest a request may take while Postgres is unreachable. The Node entry waits 3 s for a
 * connection and 5 s for a query's answer; the slowest request waits twice, for the address-ban
 * list it reloads (which then keeps the last one) and for its own query: 10 s, plus a margin.
 */
const POSTGRES_BOUND_MS = 11_500;
/** While Upstash is unreachable: a rate-limit and a revocation command, 1 s each, plus a margin. */
const UPSTASH_BOUND_MS = 3_000;
/** `/health` gives up on a check after 3 s. */
const HEALTH_BOUND_MS = 4_000;
const outages = ["down", "blackhole"] as const satisfies ProxyMode[];

/** The slowest failing request by dependency and mode, printed after the suite. */
const measured: Record<string, number> = {};
afterAll(() => {
  if (Object.keys(measured).length > 0) console.info("[dependencies] max ms:", measured);
});

/** Over real HTTP; a request still unanswered long after every bound fails the test. */
const bounded = (base: string): Requester => ({
  request: (path, init) =>
    fetch(new URL(path, base), { ...init, signal: AbortSignal.timeout(POSTGRES_BOUND_MS * 2) }),
});

/** Sends a request and reads its answer, timing both. */
async function timed(request: () => Response | Promise<Response>) {
  const started = performance.now();
  const res = await request();
  const body = await res.text();
  const ms = Math.round(performance.now() - started);
  const read: HttpResponse = {
    status: res.status,
    headers: res.headers,
    text: async () => body,
    json: async () => JSON.parse(body),
  };
  return { res: read, ms };
}

async function expectUnavailable(res: HttpResponse) {
  const retryAfter = Number(res.headers.get("retry-after"));
  await expectError(res, 503, "service_unavailable");
  expect(retryAfter).toBeGreaterThan(0);
}

describe.runIf(Boolean(services.postgres))("when Postgres is unreachable", () => {
  let proxy: TcpProxy;
  let server: RunningServer;
  let http: Requester;
  let tenant: Tenant;
  let deviceSecret: string;
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    const database = await createTestDatabase(services.postgres ?? "");
    cleanup.push(() => database.drop());
    const real = new URL(database.url);
    proxy = await startTcpProxy({ host: real.hostname, port: Number(real.port || 5432) });
    cleanup.push(() => proxy.close());
    const throughProxy = new URL(database.url);
    throughProxy.host = `127.0.0.1:${proxy.port}`;
    server = await startNodeServer({ ...testEnv, DATABASE_URL: throughProxy.toString() });
    cleanup.push(() => server.stop());
    // Runs first: back up, so no connection a failed test left hanging holds up the stop.
    cleanup.push(() => proxy.set("up"));
    http = bounded(server.url);
    tenant = await createTenant(http, "outage");
    const device = await readJson(
      await send(http, "POST", "/v1/devices", {
        body: { name: "phone" },
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    deviceSecret = device.data.secret;
  });
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  /** Requests that need the database: a sign-in, the admin's app list, a profile, a GPS point. */
  const databaseRequests = [
    () =>
      send(http, "POST", "/v1/apps/outage/tokens", {
        body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
      }),
    () => send(http, "GET", "/v1/apps", { headers: adminHeaders }),
    () => send(http, "GET", "/v1/users/me", { headers: bearer(tenant.reader.accessToken) }),
    () =>
      send(
        http,
        "GET",
        `/v1/gps/osmand?key=${deviceSecret}&id=phone&lat=52.52&lon=13.4&timestamp=${Math.floor(Date.now() / 1000)}`,
      ),
  ];
  let bans = 0;

  it.each(outages)(
    "%s: /health and database requests answer 503 in time, then recover without a restart",
    async (mode) => {
      // Open connections in the pool for the outage to catch, and an address ban (of nobody here)
      // so that the next requests reload the ban list first: the slowest case.
      for (const res of await Promise.all(databaseRequests.map((request) => request()))) {
        expect(res.status).toBe(200);
      }
      const ban = await send(http, "POST", "/v1/admin/bans", {
        body: { ip: `198.51.100.${++bans}`, reason: "dependencies test" },
        headers: adminHeaders,
      });
      expect(ban.status, await ban.clone().text()).toBe(201);

      await proxy.set(mode);
      const slowest = { health: 0, requests: 0 };
      // Twice: the first round meets the connections the pool holds, the second new ones.
      for (let round = 0; round < 2; round++) {
        const [health, ...answers] = await Promise.all([
          timed(() => http.request("/health")),
          ...databaseRequests.map((request) => timed(request)),
        ]);
        expect(health!.res.status).toBe(503);
        expect(await readJson(health!.res)).toMatchObject({
          status: "error",
          checks: { db: "error", cache: "ok" },
        });
        for (const { res } of answers) await expectUnavailable(res);
        slowest.health = Math.max(slowest.health, health!.ms);
        slowest.requests = Math.max(slowest.requests, ...answers.map(({ ms }) => ms));
      }
      measured[`postgres ${mode}: /health`] = slowest.health;
      measured[`postgres ${mode}: requests`] = slowest.requests;
      expect(slowest.health).toBeLessThan(HEALTH_BOUND_MS);
      expect(slowest.requests).toBeLessThan(POSTGRES_BOUND_MS);

      await proxy.set("up");
      expect((await http.request("/health")).status).toBe(200);
      for (const res of await Promise.all(databaseRequests.map((request) => request()))) {
        expect(res.status, await res.clone().text()).toBe(200);
      }
      expect(server.output()).not.toContain('"message":"unhandled error"');
    },
  );
});

describe.runIf(Boolean(services.redis))("when Upstash Redis is unreachable", () => {
  let proxy: TcpProxy;
  let server: RunningServer;
  let http: Requester;
  let tenant: Tenant;
  const cleanup: Array<() => Promise<unknown>> = [];
  const limit = 3;

  beforeAll(async () => {
    const upstash = await startUpstashRest({ redisUrl: services.redis ?? "" });
    cleanup.push(() => upstash.close());
    proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(upstash.url).port) });
    cleanup.push(() => proxy.close());
    // The database is not under test here: embedded PGlite keeps this part to Redis alone.
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-deps-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    server = await startNodeServer({
      ...testEnv,
      DATA_DIR: dataDir,
      UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${proxy.port}`,
      UPSTASH_REDIS_REST_TOKEN: upstash.token,
      RATE_LIMIT_ENABLED: "true",
      RATE_LIMIT_DEFAULT_PER_MINUTE: String(limit),
      RATE_LIMIT_ADMIN_PER_MINUTE: "1000",
      TRUST_PROXY: "127.0.0.1, ::1",
    });
    cleanup.push(() => server.stop());
    cleanup.push(() => proxy.set("up"));
    http = bounded(server.url);
    tenant = await createTenant(http, "outage");
  });
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it.each(outages)(
    "%s: the limiter fails open, tokens fail closed (503), and both recover without a restart",
    async (mode) => {
      // Buckets of their own in the shared Redis: a fresh token, and a fresh client address (the
      // server trusts the loopback proxy's X-Forwarded-For) on a public route.
      const token = (await signIn(http, "outage", tenant.reader.email)).accessToken;
      const anonymous = { "X-Forwarded-For": `198.18.${outages.indexOf(mode)}.${limit}` };
      await proxy.set(mode);

      const health = await timed(() => http.request("/health"));
      expect(health.res.status).toBe(503);
      expect(await readJson(health.res)).toMatchObject({
        status: "error",
        checks: { db: "ok", cache: "error" },
      });
      expect(health.ms).toBeLessThan(HEALTH_BOUND_MS);

      // Past the limit, every request passes: none can be counted.
      const passed = await Promise.all(
        Array.from({ length: limit + 2 }, () =>
          timed(() => send(http, "GET", "/v1", { headers: anonymous })),
        ),
      );
      for (const { res } of passed) {
        expect(res.status).toBe(200);
        expect(res.headers.get("x-ratelimit-remaining")).toBe(String(limit));
      }
      expect(server.output()).toContain("rate limiter unavailable; request allowed");
      // A token's revocation, and a sign-in's lockout, cannot be checked: no token is accepted.
      const refused = await Promise.all([
        timed(() => send(http, "GET", "/v1/users/me", { headers: bearer(token) })),
        timed(() =>
          send(http, "POST", "/v1/apps/outage/tokens", {
            body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
          }),
        ),
      ]);
      for (const { res } of refused) await expectUnavailable(res);
      const max = Math.max(...[...passed, ...refused].map(({ ms }) => ms));
      measured[`upstash ${mode}: /health`] = health.ms;
      measured[`upstash ${mode}: requests`] = max;
      expect(max).toBeLessThan(UPSTASH_BOUND_MS);

      await proxy.set("up");
      expect((await http.request("/health")).status).toBe(200);
      const me = await send(http, "GET", "/v1/users/me", { headers: bearer(token) });
      expect(me.status).toBe(200);
      expect(me.headers.get("x-ratelimit-remaining")).toBe(String(limit - 1));
      // Counting again, from a full budget: what passed during the outage was not counted.
      for (let left = limit - 1; left >= 0; left--) {
        const res = await send(http, "GET", "/v1", { headers: anonymous });
        expect(res.status).toBe(200);
        expect(res.headers.get("x-ratelimit-remaining")).toBe(String(left));
      }
      await expectError(
        await send(http, "GET", "/v1", { headers: anonymous }),
        429,
        "rate_limited",
      );
      expect(server.output()).not.toContain('"message":"unhandled error"');
    },
  );
});

if (!services.postgres) announceSkip("dependencies: Postgres outage", "TEST_DATABASE_URL");
if (!services.redis) announceSkip("dependencies: Upstash Redis outage", "TEST_REDIS_URL");
