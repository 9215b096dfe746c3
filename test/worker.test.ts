import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { announceSkip, services } from "./support/services";
import { startTcpProxy } from "./support/tcp-proxy";
import { totpCode } from "./support/totp";
import { startUpstashRest } from "./support/upstash-rest";
import {
  createWorkerDatabase,
  startWorker as startWorkerWith,
  type Worker,
} from "./support/worker";

/**
 * The Worker itself, bundled by wrangler from `wrangler.toml` and run inside workerd, reaching
 * Postgres through the Neon serverless driver and a local WebSocket proxy.
 */
const workerSecrets = {
  APP_ENV: "test",
  ADMIN_API_KEY: "hk_admin_worker_test_0123456789abcdef",
  KEY_ENCRYPTION_SECRET: "worker-test-key-encryption-secret-0123456789",
};

const startWorker = (settings: Record<string, string>) =>
  startWorkerWith({ ...workerSecrets, ...settings });

describe("the Worker in workerd", () => {
  let worker: Worker;
  const admin = { Authorization: `Bearer ${workerSecrets.ADMIN_API_KEY}` };
  const teardown: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    let database: Record<string, string> = {
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/unreachable",
    };
    if (services.postgres) {
      const created = await createWorkerDatabase(services.postgres);
      teardown.push(created.close);
      database = created.settings;
    } else {
      announceSkip("Worker health against real Postgres", "TEST_DATABASE_URL");
    }
    worker = await startWorker(database);
  });

  afterAll(async () => {
    await worker?.dispose();
    for (const dispose of teardown.reverse()) await dispose();
  });

  it("serves the console from its static assets and everything else from the Worker", async () => {
    const index = await worker.fetch("http://heimdall.test/");
    expect(index.status).toBe(200);
    const html = await index.text();
    expect(html).toContain("<title>Heimdall console</title>");
    const script = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
    const asset = await worker.fetch(`http://heimdall.test${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toContain("javascript");
    // /v1/docs and /v1/graphiql load their scripts from the assets, not a CDN.
    const docs = await (await worker.fetch("http://heimdall.test/v1/docs")).text();
    expect(docs).toContain('src="/vendor/scalar/standalone.js"');
    const graphiql = await (await worker.fetch("http://heimdall.test/v1/graphiql")).text();
    expect(graphiql).toContain('src="/vendor/graphiql/yoga-graphiql.umd.js"');
    expect(`${docs}${graphiql}`).not.toMatch(/(src|href)="https?:/);
    for (const path of ["/vendor/scalar/standalone.js", "/vendor/graphiql/yoga-graphiql.umd.js"]) {
      const vendored = await worker.fetch(`http://heimdall.test${path}`);
      expect(vendored.status, path).toBe(200);
      expect(vendored.headers.get("content-type")).toContain("javascript");
      await vendored.arrayBuffer();
    }
    const config = await readJson(await worker.fetch("http://heimdall.test/v1/console/config"));
    expect(config.data.map_tile_url).toBe("https://tile.openstreetmap.org/{z}/{x}/{y}.png");
    await expectError(await worker.fetch("http://heimdall.test/v1/nope"), 404, "not_found");
  });

  it.runIf(Boolean(services.postgres))(
    "answers /health ok with the database reached through the Neon driver",
    async () => {
      const res = await worker.fetch("http://heimdall.test/health");
      const body = await readJson(res);
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ status: "ok", checks: { db: "ok", cache: "ok" } });
      expect(Date.parse(body.timestamp)).toBeGreaterThan(Date.now() - 60_000);
    },
  );

  it.runIf(Boolean(services.postgres))(
    "runs the identity flow inside workerd: argon2id, signing keys, password grant, authorize",
    async () => {
      const admin = { Authorization: `Bearer ${workerSecrets.ADMIN_API_KEY}` };
      const json = { "Content-Type": "application/json" };
      const post = (path: string, body: unknown, headers: Record<string, string> = admin) =>
        worker.fetch(`http://heimdall.test${path}`, {
          method: "POST",
          headers: { ...json, ...headers },
          body: JSON.stringify(body),
        });
      expect((await post("/v1/apps", { name: "edge", display_name: "Edge" })).status).toBe(201);
      const user = await post("/v1/apps/edge/users", {
        email: "ada@edge.dev",
        password: "analytical engine",
        role: "admin",
      });
      expect(user.status).toBe(201);
      const login = await post(
        "/v1/apps/edge/tokens",
        { grant_type: "password", email: "ada@edge.dev", password: "analytical engine" },
        {},
      );
      expect(login.status).toBe(200);
      const { access_token, refresh_token } = await readJson(login);
      const decision = await post(
        "/v1/authorize",
        { token: access_token, permission: "gps:read" },
        {},
      );
      expect(await readJson(decision)).toMatchObject({ allowed: true });

      // Rotation's one statement over the Neon driver, and a refused sign-in's audit event
      // through the isolate's group-commit audit log, both readable once answered.
      const refreshed = await post("/v1/apps/edge/tokens/refresh", { refresh_token }, {});
      expect(refreshed.status).toBe(200);
      expect((await readJson(refreshed)).refresh_token).not.toBe(refresh_token);
      const refused = await Promise.all(
        ["wrong one", "wrong two"].map((password) =>
          post(
            "/v1/apps/edge/tokens",
            { grant_type: "password", email: "ada@edge.dev", password },
            {},
          ),
        ),
      );
      expect(refused.map((res) => res.status)).toEqual([400, 400]);
      const audit = async (action: string) =>
        (
          await readJson(
            await worker.fetch(`http://heimdall.test/v1/apps/edge/audit-logs?action=${action}`, {
              headers: admin,
            }),
          )
        ).data;
      expect(await audit("token.refreshed")).toHaveLength(1);
      expect(await audit("auth.login.failed")).toHaveLength(2);
    },
  );

  const adminPost = (path: string, body: unknown, headers: Record<string, string> = admin) =>
    worker.fetch(`http://heimdall.test${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  it.runIf(Boolean(services.postgres))(
    "reads a device's track through the Neon driver: times, coordinates and altitudes",
    async () => {
      expect((await adminPost("/v1/apps", { name: "trail", display_name: "Trail" })).status).toBe(
        201,
      );
      const device = await adminPost("/v1/apps/trail/devices", { name: "walker" });
      expect(device.status).toBe(201);
      const { secret, id } = (await readJson(device)).data;
      const key = await adminPost("/v1/apps/trail/api-keys", {
        name: "reader",
        role: "api-read-only",
      });
      expect(key.status).toBe(201);
      const points = [
        { timestamp: "2025-11-20T10:00:00.123Z", latitude: 52.5, longitude: 13.4, altitude: 31.5 },
        { timestamp: "2025-11-20T10:00:01.456Z", latitude: 52.50001, longitude: 13.40002 },
        {
          timestamp: "2025-11-20T10:00:02.789Z",
          latitude: 52.5003,
          longitude: 13.4001,
          altitude: 0,
        },
      ];
      const posted = await adminPost(
        "/v1/gps/batch",
        { points },
        { Authorization: `Bearer ${secret}` },
      );
      expect(posted.status).toBe(200);
      const track = await worker.fetch(
        `http://heimdall.test/v1/devices/${id}/track?from=2025-11-20T00:00:00Z&to=2025-11-21T00:00:00Z`,
        { headers: { Authorization: `Bearer ${(await readJson(key)).data.key}` } },
      );
      expect(track.status).toBe(200);
      expect(await readJson(track)).toEqual({
        type: "Feature",
        geometry: {
          type: "LineString",
          coordinates: [
            [13.4, 52.5, 31.5],
            [13.40002, 52.50001],
            [13.4001, 52.5003, 0],
          ],
        },
        properties: {
          device_id: id,
          points: 3,
          points_in_range: 3,
          coordTimes: points.map((p) => p.timestamp),
        },
      });
    },
  );

  it.runIf(Boolean(services.postgres))("explains a refused body in zod's English", async () => {
    const refused = await expectError(
      await adminPost("/v1/apps", { name: 42, display_name: "Numbers" }),
      400,
      "validation_error",
    );
    expect(refused.error.details).toContainEqual({
      field: "json.name",
      reason: "Invalid input: expected string, received number",
    });
  });

  it.runIf(Boolean(services.postgres))(
    "answers GraphQL inside workerd, refusing a malformed and an oversized operation",
    async () => {
      expect((await adminPost("/v1/apps", { name: "graph", display_name: "Graph" })).status).toBe(
        201,
      );
      const user = { email: "grace@graph.dev", password: "compiler pioneer" };
      expect((await adminPost("/v1/apps/graph/users", { ...user, role: "admin" })).status).toBe(
        201,
      );
      const login = await adminPost(
        "/v1/apps/graph/tokens",
        { grant_type: "password", ...user },
        {},
      );
      const { access_token } = await readJson(login);
      const gql = async (query: string) => {
        const res = await adminPost(
          "/v1/gql",
          { query },
          { Authorization: `Bearer ${access_token}` },
        );
        return { status: res.status, body: await readJson(res) };
      };

      const me = await gql("{ me { roles isSuperAdmin } }");
      expect(me.status, JSON.stringify(me.body)).toBe(200);
      expect(me.body).toEqual({ data: { me: { roles: ["admin"], isSuperAdmin: true } } });
      // The parser's own errors reach the client as they are, not masked as unexpected ones.
      const broken = await gql("{ me { roles ");
      expect(broken.body.data).toBeUndefined();
      expect(broken.body.errors[0].message).toMatch(/^Syntax Error: Expected Name, found <EOF>/);
      const oversized = await gql(
        `{ ${Array.from({ length: 2001 }, () => "__typename").join(" ")} }`,
      );
      expect(oversized.body.data).toBeUndefined();
      expect(oversized.body.errors[0].message).toBe("Syntax Error: Token limit of 2000 exceeded.");
    },
  );

  it.runIf(Boolean(services.postgres))(
    "enrolls a second factor inside workerd with a code computed elsewhere",
    async () => {
      expect((await adminPost("/v1/apps", { name: "otp", display_name: "Otp" })).status).toBe(201);
      const user = { email: "ada@otp.dev", password: "difference engine" };
      expect((await adminPost("/v1/apps/otp/users", { ...user, role: "admin" })).status).toBe(201);
      const login = await adminPost("/v1/apps/otp/tokens", { grant_type: "password", ...user }, {});
      const token = { Authorization: `Bearer ${(await readJson(login)).access_token}` };
      const started = await adminPost("/v1/users/me/2fa", {}, token);
      expect(started.status).toBe(201);
      const { secret, otpauth_url } = (await readJson(started)).data;
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(new URL(otpauth_url).searchParams.get("secret")).toBe(secret);
      const wrong = totpCode(secret, new Date(Date.now() + 600_000));
      await expectError(
        await adminPost("/v1/users/me/2fa/verify", { code: wrong }, token),
        400,
        "validation_error",
      );
      const confirmed = await adminPost(
        "/v1/users/me/2fa/verify",
        { code: totpCode(secret, new Date()) },
        token,
      );
      expect(confirmed.status).toBe(200);
      expect((await readJson(confirmed)).data.recovery_codes).toHaveLength(10);
    },
  );

  it("answers /v1/health 503 when its database cannot be reached", async () => {
    const unreachable = await startWorker({ DATABASE_URL: "postgres://postgres@127.0.0.1:1/none" });
    try {
      const res = await unreachable.fetch("http://heimdall.test/v1/health");
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: "error", checks: { db: "error" } });
    } finally {
      await unreachable.dispose();
    }
  });

  it.runIf(Boolean(services.postgres))(
    "answers 503 within bounded time while its database stops answering, and recovers",
    async () => {
      const database = await createWorkerDatabase(services.postgres ?? "");
      const target = new URL(database.settings.DATABASE_URL);
      const proxy = await startTcpProxy({
        host: target.hostname,
        port: Number(target.port || 5432),
      });
      target.host = `127.0.0.1:${proxy.port}`;
      const silent = await startWorker({ ...database.settings, DATABASE_URL: target.toString() });
      const admin = { Authorization: `Bearer ${workerSecrets.ADMIN_API_KEY}` };
      const timed = async (path: string) => {
        const started = Date.now();
        const res = await silent.fetch(`http://heimdall.test${path}`, { headers: admin });
        return { res, ms: Date.now() - started };
      };
      try {
        expect((await timed("/v1/apps")).res.status).toBe(200);
        await proxy.set("blackhole");
        const health = await timed("/v1/health");
        expect(health.res.status).toBe(503);
        expect(health.ms).toBeLessThan(4_500);
        const apps = await timed("/v1/apps");
        expect(apps.res.headers.get("retry-after")).toBe("5");
        await expectError(apps.res, 503, "service_unavailable");
        // A connection that never answers gives up after 3 s; a request at most twice (bans).
        expect(apps.ms).toBeLessThan(9_000);
        console.log(`[worker] database silent: /v1/health ${health.ms} ms, /v1/apps ${apps.ms} ms`);
        await proxy.set("up");
        expect((await timed("/v1/apps")).res.status).toBe(200);
      } finally {
        await silent.dispose();
        await proxy.close();
        await database.close();
      }
    },
  );

  it("refuses to serve without DATABASE_URL, saying so in the error shape", async () => {
    const unconfigured = await startWorker({ DATABASE_URL: "" });
    try {
      const res = await unconfigured.fetch("http://heimdall.test/health");
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({
        error: { code: "internal_error", message: "The server is misconfigured" },
      });
    } finally {
      await unconfigured.dispose();
    }
  });

  it.runIf(Boolean(services.redis))(
    "limits requests through Upstash: 429 with Retry-After past the allowance",
    async () => {
      const upstash = await startUpstashRest({ redisUrl: services.redis ?? "" });
      const limited = await startWorker({
        DATABASE_URL: "postgres://postgres@127.0.0.1:1/unreachable",
        UPSTASH_REDIS_REST_URL: upstash.url,
        UPSTASH_REDIS_REST_TOKEN: upstash.token,
        RATE_LIMIT_DEFAULT_PER_MINUTE: "2",
      });
      try {
        // A client address of its own, so no other run's requests share the bucket.
        const client = { "CF-Connecting-IP": `2001:db8::${randomBytes(2).toString("hex")}` };
        const answers = [];
        for (let i = 0; i < 3; i++) {
          const res = await limited.fetch("http://heimdall.test/v1", { headers: client });
          await res.text();
          answers.push([res.status, res.headers.get("x-ratelimit-remaining")]);
          if (res.status === 429) expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
        }
        expect(answers).toEqual([
          [200, "1"],
          [200, "0"],
          [429, "0"],
        ]);
      } finally {
        await limited.dispose();
        await upstash.close();
      }
    },
  );

  it("answers an unknown route 404 in the error shape", async () => {
    const res = await worker.fetch("http://heimdall.test/v1/no-such-route", {
      headers: { "X-Request-Id": "wk-1" },
    });
    expect(res.headers.get("x-request-id")).toBe("wk-1");
    await expectError(res, 404, "not_found");
  });

  it("serves GET /v1 and the OpenAPI document", async () => {
    const info = await worker.fetch("http://heimdall.test/v1");
    expect(info.status).toBe(200);
    expect((await readJson(info)).data.name).toBe("heimdall");
    const doc = await worker.fetch("http://heimdall.test/v1/openapi.json");
    expect(doc.status).toBe(200);
    const served = await readJson(doc);
    expect(served.openapi).toBe("3.1.0");
    // The same document as Node's: the Worker's zod aliases leave its schemas as they are.
    const db = await createMemoryDatabase();
    try {
      const node = createTestApp({ db }).app;
      const nodes = await readJson(await node.request("http://heimdall.test/v1/openapi.json"));
      expect(served).toEqual(nodes);
    } finally {
      await db.close();
    }
  }, 60_000);
});
