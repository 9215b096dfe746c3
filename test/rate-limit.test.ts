import { type AddressInfo, createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { createRedisLimiter } from "../src/adapters/redis/limiter";
import { createRedisRevocationStore } from "../src/adapters/redis/revocations";
import { createUpstashRedis } from "../src/adapters/upstash/redis";
import type { DatabasePort, Limiter } from "../src/ports";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  type LogEvent,
} from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createDevices, createTenant, PASSWORD, send } from "./support/identity";
import { nativeRedisClients } from "./support/native-redis";
import { announceSkip, services } from "./support/services";
import { startUpstashRest, type UpstashRestServer } from "./support/upstash-rest";

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

const limited = {
  RATE_LIMIT_ENABLED: "true",
  RATE_LIMIT_DEFAULT_PER_MINUTE: "5",
  RATE_LIMIT_ADMIN_PER_MINUTE: "7",
  RATE_LIMIT_TOKEN_PER_MINUTE: "4",
  RATE_LIMIT_AUTHORIZE_PER_MINUTE: "3",
};

describe("rate limits by class", () => {
  it("counts each class apart, sends the headers, and answers 429 with Retry-After", async () => {
    const clock = createTestClock();
    const { app } = createTestApp({ db, clock, env: limited });
    const first = await app.request("/v1");
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit")).toBe("5");
    expect(first.headers.get("x-ratelimit-remaining")).toBe("4");
    const reset = Number(first.headers.get("x-ratelimit-reset"));
    expect(reset * 1000).toBeGreaterThan(clock.now().getTime());
    expect(reset * 1000).toBeLessThanOrEqual(clock.now().getTime() + 60_000);
    for (let i = 0; i < 4; i++) expect((await app.request("/v1")).status).toBe(200);
    const refused = await app.request("/v1");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("0");
    const body = await expectError(refused, 429, "rate_limited");
    expect(body.error.message).toMatch(/5 requests per minute/);

    // Other classes have their own budgets.
    const adminRes = await app.request("/v1/apps", { headers: adminHeaders });
    expect(adminRes.status).toBe(200);
    expect(adminRes.headers.get("x-ratelimit-limit")).toBe("7");
    const authorize = await send(app, "POST", "/v1/authorize", {
      body: { token: "x", permission: "a:b" },
    });
    expect(authorize.headers.get("x-ratelimit-limit")).toBe("3");
    // Health is never limited.
    for (let i = 0; i < 10; i++) expect((await app.request("/health")).status).toBe(200);

    clock.advance(120_000);
    expect((await app.request("/v1")).status).toBe(200);
  });

  it("keys the default class by credential, so one token cannot spend another's budget", async () => {
    const { app } = createTestApp({ db, env: { ...limited, RATE_LIMIT_ADMIN_PER_MINUTE: "100" } });
    const tenant = await createTenant(app, "kilo");
    const keys: string[] = [];
    for (const name of ["one", "two", "three"]) {
      const res = await send(app, "POST", "/v1/apps/kilo/api-keys", {
        body: { name, role: "api-read-only" },
        headers: adminHeaders,
      });
      keys.push((await readJson(res)).data.key);
    }
    const [one, two, three] = keys as [string, string, string];
    for (let i = 0; i < 5; i++) await app.request("/v1", { headers: bearer(one) });
    await expectError(await app.request("/v1", { headers: bearer(one) }), 429, "rate_limited");
    expect((await app.request("/v1", { headers: bearer(two) })).status).toBe(200);
    expect((await app.request("/v1", { headers: { "X-API-Key": three } })).status).toBe(200);
    // Nor does it spend the budget of its address.
    const sameIp = { "X-Test-Client-Ip": "203.0.113.40" };
    for (let i = 0; i < 4; i++) {
      expect((await app.request("/v1", { headers: { ...sameIp, ...bearer(two) } })).status).toBe(
        200,
      );
    }
    const anonymous = await app.request("/v1", { headers: sameIp });
    expect(anonymous.headers.get("x-ratelimit-remaining")).toBe("4");
    expect(tenant.app.name).toBe("kilo");
  });

  it("puts the OAuth page and platform sign-in in the per-IP token class", async () => {
    const { app } = createTestApp({ db, env: limited });
    const client = { "X-Test-Client-Ip": "203.0.113.41" };
    for (let i = 0; i < 5; i++) await app.request("/v1", { headers: client });
    await expectError(await app.request("/v1", { headers: client }), 429, "rate_limited");
    for (const path of [
      "/v1/apps/nosuch/oauth/authorize",
      "/v1/apps/nosuch/platforms/github/login",
      "/v1/apps/nosuch/platforms/github/callback",
    ]) {
      const res = await app.request(path, { headers: { ...client, ...bearer("pk_junk") } });
      expect(res.status, path).not.toBe(429);
      expect(res.headers.get("x-ratelimit-limit"), path).toBe("4");
    }
    // One budget for the app's sign-in surfaces from this address: the fifth is refused.
    await app.request("/v1/apps/nosuch/oauth/authorize", { headers: client });
    await expectError(
      await app.request("/v1/apps/nosuch/oauth/authorize", { headers: client }),
      429,
      "rate_limited",
    );
  });

  it("lets an app set its own token endpoint limit", async () => {
    const { app } = createTestApp({ db, env: { ...limited, RATE_LIMIT_ADMIN_PER_MINUTE: "100" } });
    const tenant = await createTenant(app, "tango");
    const patched = await send(app, "PATCH", "/v1/apps/tango/settings", {
      body: { token_rate_limit_per_minute: 2 },
      headers: adminHeaders,
    });
    expect(patched.status).toBe(200);
    const { app: fresh } = createTestApp({ db, env: limited });
    const login = () =>
      send(fresh, "POST", "/v1/apps/tango/tokens", {
        body: { grant_type: "password", email: tenant.reader.email, password: "wrong password!" },
      });
    expect((await login()).headers.get("x-ratelimit-limit")).toBe("2");
    await login();
    await expectError(await login(), 429, "rate_limited");
  });

  it("lets an app set the budget of its own access tokens", async () => {
    const { app } = createTestApp({ db, env: { ...limited, RATE_LIMIT_ADMIN_PER_MINUTE: "100" } });
    const tenant = await createTenant(app, "xray");
    await send(app, "PATCH", "/v1/apps/xray/settings", {
      body: { default_rate_limit_per_minute: 2 },
      headers: adminHeaders,
    });
    const { app: fresh } = createTestApp({ db, env: limited });
    const me = () => fresh.request("/v1/users/me", { headers: bearer(tenant.reader.accessToken) });
    const first = await me();
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit")).toBe("2");
    await me();
    await expectError(await me(), 429, "rate_limited");
  });

  it("derives the client address once per request for the ban check, the limiter and the audit", async () => {
    const asked: string[] = [];
    const { app } = createTestApp({
      db,
      env: { ...limited, RATE_LIMIT_TOKEN_PER_MINUTE: "100" },
      ports: {
        clientIp: (request) => {
          asked.push(request.url);
          return "198.51.100.4";
        },
      },
    });
    const tenant = await createTenant(app, "lima");
    asked.length = 0;
    const signIn = await send(app, "POST", "/v1/apps/lima/tokens", {
      body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
    });
    expect(signIn.status).toBe(200);
    expect(signIn.headers.get("x-ratelimit-limit")).toBe("100");
    expect(asked).toHaveLength(1);
    const { access_token: token } = (await signIn.json()) as { access_token: string };
    const activity = await send(app, "GET", "/v1/users/me/audit?limit=100", {
      headers: bearer(token),
    });
    const events = (await activity.json()) as {
      data: Array<{ action: string; ip_address: string | null }>;
    };
    expect(events.data).toContainEqual(
      expect.objectContaining({ action: "auth.login.succeeded", ip_address: "198.51.100.4" }),
    );
  });

  it("reads the Authorization header once per request, for the limiter and the route", async () => {
    const { app } = createTestApp({
      db,
      env: { ...limited, RATE_LIMIT_DEFAULT_PER_MINUTE: "100" },
    });
    const tenant = await createTenant(app, "mike");
    const request = new Request("http://localhost/v1/users/me", {
      headers: bearer(tenant.reader.accessToken),
    });
    const read = request.headers.get.bind(request.headers);
    let reads = 0;
    request.headers.get = (name) => {
      if (name.toLowerCase() === "authorization") reads++;
      return read(name);
    };
    const res = await app.request(request);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-ratelimit-limit")).toBe("100");
    expect(reads).toBe(1);
  });

  it("is off with RATE_LIMIT_ENABLED=false", async () => {
    const { app } = createTestApp({ db, env: { ...limited, RATE_LIMIT_ENABLED: "false" } });
    for (let i = 0; i < 10; i++) {
      const res = await app.request("/v1");
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit")).toBeNull();
    }
  });
});

describe("who a request is charged to, over every route", () => {
  const walkLimits = {
    RATE_LIMIT_ENABLED: "true",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "3",
    RATE_LIMIT_ADMIN_PER_MINUTE: "3",
    RATE_LIMIT_TOKEN_PER_MINUTE: "3",
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: "3",
  };
  const unlimited = new Set(["/health", "/v1/health", "/v1/docs", "/v1/openapi.json"]);
  /** Four different junk credentials, one of each kind, the last a device secret in the URL. */
  const junk = (): Array<{ headers: Record<string, string>; query: string }> => {
    const random = crypto.randomUUID().replaceAll("-", "");
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const jwt = `${b64({ alg: "ES256", kid: random })}.${b64({ app: `app_${random}` })}.c2ln`;
    return [
      { headers: bearer(`pk_${random}`), query: "" },
      { headers: { "X-API-Key": `pk_${random}x` }, query: "" },
      { headers: bearer(jwt), query: "" },
      { headers: { Authorization: `Basic ${btoa(`x:dk_${random}`)}` }, query: `?key=dk_${random}` },
    ];
  };

  it("charges a request whose credential is missing or rejected to its client IP, on every route", async () => {
    const setup = createTestApp({ db, env: { RATE_LIMIT_ENABLED: "false" } });
    await createTenant(setup.app, "walk");
    const { app } = createTestApp({ db, env: walkLimits });
    const routes = [
      ...new Set(
        app.routes
          .filter((route) => route.method !== "ALL" && !route.path.includes("*"))
          .map((route) => `${route.method} ${route.path}`),
      ),
    ];
    expect(routes.length).toBeGreaterThan(100);
    const fails: string[] = [];
    let ip = 0;
    for (const route of routes) {
      const [method, template] = route.split(" ") as [string, string];
      const path = template.replace(":app_name", "walk").replace(/:\w+/g, "x");
      const client = `198.18.${Math.floor(++ip / 250)}.${ip % 250}`;
      const answers: Array<string | null> = [];
      let last = 0;
      for (const { headers, query } of junk()) {
        const res = await app.request(`${path}${query}`, {
          method,
          headers: { ...headers, "X-Test-Client-Ip": client },
        });
        answers.push(res.headers.get("x-ratelimit-remaining"));
        last = res.status;
      }
      if (unlimited.has(path)) {
        if (answers.some((answer) => answer !== null)) fails.push(`${route}: limited`);
        continue;
      }
      // Four requests, four different junk credentials, one budget of 3: the fourth is refused.
      if (answers.join() !== "2,1,0,0" || last !== 429) {
        fails.push(`${route}: remaining ${answers.join()} then ${last}`);
      }
    }
    expect(fails).toEqual([]);
  }, 120_000);

  it("charges device-in-URL tracker requests to the device: a fleet behind one NAT address", async () => {
    const setup = createTestApp({ db, env: { RATE_LIMIT_ENABLED: "false" } });
    const tenant = await createTenant(setup.app, "fleet");
    const devices = await createDevices(setup.app, tenant, 12);
    const clock = createTestClock();
    const { app } = createTestApp({ db, clock, env: walkLimits });
    const doc = await readJson(await app.request("/v1/openapi.json"));
    const trackers = Object.entries(
      doc.paths as Record<string, Record<string, { security?: Record<string, string[]>[] }>>,
    ).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, op]) => op.security?.some((scheme) => "deviceKey" in scheme))
        .map(([method]) => ({ method: method.toUpperCase(), path })),
    );
    expect(trackers.length).toBeGreaterThanOrEqual(5);
    const nat = { "X-Test-Client-Ip": "203.0.113.77" };
    const fails: string[] = [];
    for (const tracker of trackers) {
      for (const param of ["key", "access_token"]) {
        // 12 devices, 3 requests each, from one address: 36 requests against budgets of 3.
        for (const device of devices) {
          for (let i = 0; i < 3; i++) {
            const res = await app.request(`${tracker.path}?${param}=${device.secret}`, {
              method: tracker.method,
              headers: nat,
            });
            if (res.status === 429) fails.push(`${tracker.method} ${tracker.path} ${param}: 429`);
          }
        }
        for (const device of devices) {
          const res = await app.request(`${tracker.path}?${param}=${device.secret}`, {
            method: tracker.method,
            headers: nat,
          });
          if (res.status !== 429) fails.push(`${tracker.method} ${tracker.path}: no 429 at 4`);
        }
        // The devices' budgets are spent; a new window for the next round.
        clock.advance(120_000);
      }
    }
    expect(fails).toEqual([]);
    // The address itself has spent nothing: the app's JWKS still answers it.
    const jwks = await app.request("/v1/apps/fleet/.well-known/jwks.json", { headers: nat });
    expect(jwks.status).toBe(200);
    expect(jwks.headers.get("x-ratelimit-remaining")).toBe("2");
  }, 120_000);
  it("looks a device secret up once per request, for its rate limit and its authentication", async () => {
    const setup = createTestApp({ db, env: { RATE_LIMIT_ENABLED: "false" } });
    const tenant = await createTenant(setup.app, "lookups");
    const [device] = await createDevices(setup.app, tenant, 1);
    const { app, services } = createTestApp({ db, env: walkLimits });
    const secrets: string[] = [];
    const verify = services.devices.verify;
    services.devices.verify = (database, secret) => {
      secrets.push(secret);
      return verify(database, secret);
    };
    const query = new URLSearchParams({
      key: device?.secret ?? "",
      lat: "52.5",
      lon: "13.4",
      timestamp: "1763802000",
    });
    const res = await app.request(`/v1/gps/osmand?${query}`);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get("x-ratelimit-remaining")).not.toBeNull();
    expect(secrets).toEqual([device?.secret]);
  });
});

describe("under concurrency, through HTTP", () => {
  const adapters: Array<{ name: string; limiter?: () => Limiter }> = [{ name: "in-memory" }];
  let upstash: UpstashRestServer | undefined;
  if (services.redis) {
    const redisUrl = services.redis;
    beforeAll(async () => {
      upstash = await startUpstashRest({ redisUrl });
    });
    afterAll(() => upstash?.close());
    adapters.push({
      name: "native Redis",
      limiter: () =>
        createRedisLimiter(nativeRedis(redisUrl), {
          prefix: `heimdall-test:${crypto.randomUUID()}`,
        }),
    });
    adapters.push({
      name: "Upstash (real Redis)",
      limiter: () =>
        createRedisLimiter(createUpstashRedis({ url: upstash!.url, token: upstash!.token }), {
          prefix: `heimdall-test:${crypto.randomUUID()}`,
        }),
    });
  } else {
    announceSkip("rate limit concurrency on Upstash", "TEST_REDIS_URL");
  }

  it.each(adapters)(
    "lets no more than 100 of 200 concurrent requests through ($name)",
    async (adapter) => {
      const { app } = createTestApp({
        db,
        env: { RATE_LIMIT_ENABLED: "true", RATE_LIMIT_DEFAULT_PER_MINUTE: "100" },
        ...(adapter.limiter ? { ports: { limiter: adapter.limiter() } } : {}),
      });
      const results = await Promise.all(Array.from({ length: 200 }, () => app.request("/v1")));
      const passed = results.filter((res) => res.status === 200).length;
      expect(passed).toBe(100);
      expect(results.filter((res) => res.status === 429)).toHaveLength(100);
    },
  );
});

const closedPort = "127.0.0.1:1";
const nativeRedis = nativeRedisClients();
/** A loopback Redis that accepts connections and never answers. */
const silentSockets = new Set<Socket>();
const silent = createServer((socket) => silentSockets.add(socket));
beforeAll(() => new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve)));
afterAll(() => {
  for (const socket of silentSockets) socket.destroy();
  return new Promise((resolve) => silent.close(resolve));
});

describe.each([
  {
    name: "Upstash",
    dead: () => createUpstashRedis({ url: `http://${closedPort}`, token: "x" }),
  },
  { name: "native Redis (REDIS_URL)", dead: () => nativeRedis(`redis://${closedPort}`) },
  {
    name: "native Redis that never answers",
    dead: () => nativeRedis(`redis://127.0.0.1:${(silent.address() as AddressInfo).port}`),
  },
])("when Redis cannot be reached ($name)", ({ dead }) => {
  it("rate limiting fails open, with an error log", async () => {
    const { app, logs } = createTestApp({
      db,
      env: { RATE_LIMIT_ENABLED: "true" },
      ports: { limiter: createRedisLimiter(dead()) },
    });
    const started = performance.now();
    const res = await app.request("/v1");
    expect(performance.now() - started).toBeLessThan(3000);
    expect(res.status).toBe(200);
    expect(
      logs.some(
        (e: LogEvent) => e.level === "error" && e.message.includes("rate limiter unavailable"),
      ),
    ).toBe(true);
  });

  it("revocation checks fail closed: 503, no token accepted", async () => {
    const clock = createTestClock();
    const healthy = createMemoryRevocationStore(clock);
    const { app, services } = createTestApp({ db, clock, ports: { revocations: healthy } });
    const tenant = await createTenant(app, `uniform-${crypto.randomUUID().slice(0, 8)}`);
    const { app: broken, logs } = createTestApp({
      db,
      clock,
      ports: { revocations: createRedisRevocationStore(dead(), clock) },
      services: { keys: services.keys },
    });
    const started = performance.now();
    const res = await send(broken, "GET", "/v1/users/me", {
      headers: bearer(tenant.reader.accessToken),
    });
    expect(performance.now() - started).toBeLessThan(3000);
    expect(res.headers.get("retry-after")).toBe("5");
    await expectError(res, 503, "service_unavailable");
    expect(logs.some((e) => e.level === "error")).toBe(true);
    const health = await readJson(await broken.request("/health"));
    expect(health.checks.cache).toBe("error");
  });
});
