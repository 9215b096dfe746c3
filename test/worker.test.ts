import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { unstable_startWorker } from "wrangler";
import { migrationsFolder } from "./support/app";
import { expectError, readJson } from "./support/http";
import { startNeonProxy } from "./support/neon-proxy";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";

process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_LOG ??= "error";

/**
 * The Worker itself, bundled by wrangler from `wrangler.toml` and run inside workerd, reaching
 * Postgres through the Neon serverless driver and a local WebSocket proxy.
 */
const workerSecrets = {
  APP_ENV: "test",
  ADMIN_API_KEY: "hk_admin_worker_test_0123456789abcdef",
  KEY_ENCRYPTION_SECRET: "worker-test-key-encryption-secret-0123456789",
};

type Worker = Awaited<ReturnType<typeof unstable_startWorker>>;

/** Starts `wrangler.toml`'s Worker with test settings; the Worker's outbound traffic is real. */
async function startWorker(settings: Record<string, string>): Promise<Worker> {
  const worker = await unstable_startWorker({
    config: "wrangler.toml",
    bindings: Object.fromEntries(
      Object.entries({ LOG_LEVEL: "error", ...workerSecrets, ...settings }).map(([name, value]) => [
        name,
        { type: "plain_text" as const, value },
      ]),
    ),
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false },
  });
  await worker.ready;
  return worker;
}

describe("the Worker in workerd", () => {
  let worker: Worker;
  const teardown: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    let databaseUrl = "postgres://postgres@127.0.0.1:1/unreachable";
    let wsProxy: string | undefined;
    if (services.postgres) {
      const database = await createTestDatabase(services.postgres);
      teardown.push(database.drop);
      const pool = new pg.Pool({ connectionString: database.url });
      await migrate(drizzle(pool), { migrationsFolder });
      await pool.end();
      const proxy = await startNeonProxy();
      teardown.push(proxy.close);
      databaseUrl = database.url;
      wsProxy = proxy.url;
    } else {
      announceSkip("Worker health against real Postgres", "TEST_DATABASE_URL");
    }
    worker = await startWorker({
      DATABASE_URL: databaseUrl,
      ...(wsProxy ? { NEON_WS_PROXY: wsProxy } : {}),
    });
  });

  afterAll(async () => {
    await worker?.dispose();
    for (const dispose of teardown.reverse()) await dispose();
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
      const { access_token } = await readJson(login);
      const decision = await post(
        "/v1/authorize",
        { token: access_token, permission: "gps:read" },
        {},
      );
      expect(await readJson(decision)).toMatchObject({ allowed: true });
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
    expect((await readJson(doc)).openapi).toBe("3.1.0");
  });
});
