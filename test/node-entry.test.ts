import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { testEnv } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, overHttp, send } from "./support/identity";
import { runNodeServer, startNodeServer } from "./support/node-server";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";
import { startUpstashRest } from "./support/upstash-rest";

/**
 * `npm start`'s entry as a real process, spoken to over real HTTP. Each test starts one to three
 * processes (tsx, a fresh PGlite and its migrations): on a loaded 2-core machine one start has
 * taken over 15 s, so the budget is per process, not the 30 s of a test that starts none.
 */
describe("the Node entry (npm start)", { timeout: 180_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it("starts on embedded PGlite under DATA_DIR, serves health and docs, and reopens it", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));

    const first = await startNodeServer({ DATA_DIR: dataDir });
    try {
      expect(first.output()).toMatch(/"database":"pglite"/);
      const health = await fetch(`${first.url}/health`);
      expect(health.status).toBe(200);
      expect(await readJson(health)).toMatchObject({
        status: "ok",
        checks: { db: "ok", cache: "ok" },
      });
      const docs = await fetch(`${first.url}/v1/docs`);
      expect(docs.status).toBe(200);
      expect(await docs.text()).toContain("/v1/openapi.json");
      await expectError(await fetch(`${first.url}/v1/nope`), 404, "not_found");
    } finally {
      expect(await first.stop()).toBe(0);
    }

    expect(existsSync(join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
    // Reopening the same directory applies no migration twice and serves again.
    const second = await startNodeServer({ DATA_DIR: dataDir });
    try {
      expect((await fetch(`${second.url}/v1/health`)).status).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });

  it("believes X-Forwarded-For from the proxies TRUST_PROXY names, and no one else's", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const remaining = async (url: string, forwardedFor?: string) => {
      const res = await fetch(`${url}/v1`, {
        headers: forwardedFor ? { "X-Forwarded-For": forwardedFor } : {},
      });
      expect(res.status).toBe(200);
      return res.headers.get("x-ratelimit-remaining");
    };
    const env = { DATA_DIR: dataDir, RATE_LIMIT_DEFAULT_PER_MINUTE: "5" };
    const trusting = await startNodeServer({ ...env, TRUST_PROXY: "127.0.0.1/32, ::1" });
    try {
      expect(await remaining(trusting.url, "198.51.100.1")).toBe("4");
      expect(await remaining(trusting.url, "198.51.100.1")).toBe("3");
      // Another client behind the same proxy has its own budget; what it prepends is ignored.
      expect(await remaining(trusting.url, "6.6.6.6, 198.51.100.2")).toBe("4");
      expect(await remaining(trusting.url, "198.51.100.1")).toBe("2");
      expect(await remaining(trusting.url)).toBe("4");
    } finally {
      expect(await trusting.stop()).toBe(0);
    }
    // Off by default: every X-Forwarded-For is the same client, the socket's peer.
    const plain = await startNodeServer(env);
    try {
      expect(await remaining(plain.url, "198.51.100.1")).toBe("4");
      expect(await remaining(plain.url, "198.51.100.2")).toBe("3");
      expect(await remaining(plain.url)).toBe("2");
    } finally {
      expect(await plain.stop()).toBe(0);
    }
  });

  it("generates an admin key on first start, prints it once, and keeps only its hash", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startNodeServer({ DATA_DIR: dataDir });
    const key = /^\s+(hk_admin_[A-Za-z0-9_-]{43})$/m.exec(first.output())?.[1];
    try {
      expect(key).toBeDefined();
      const apps = await fetch(`${first.url}/v1/apps`, {
        headers: { Authorization: `Bearer ${key}` },
      });
      expect(apps.status).toBe(200);
      const wrong = await fetch(`${first.url}/v1/apps`, {
        headers: { Authorization: "Bearer hk_admin_x" },
      });
      expect(wrong.status).toBe(401);
    } finally {
      await first.stop();
    }
    const second = await startNodeServer({ DATA_DIR: dataDir });
    try {
      expect(second.output()).not.toContain("hk_admin_");
      const apps = await fetch(`${second.url}/v1/apps`, {
        headers: { Authorization: `Bearer ${key}` },
      });
      expect(apps.status).toBe(200);
    } finally {
      await second.stop();
    }
  });

  it("refuses to start in production without its secrets", async () => {
    const { code, output } = await runNodeServer({ APP_ENV: "production" });
    expect(code).toBe(1);
    expect(output).toMatch(/ADMIN_API_KEY: required when APP_ENV=production/);
  });

  it("uses Postgres when DATABASE_URL is set", async (context) => {
    if (!services.postgres) {
      announceSkip("Node entry on real Postgres", "TEST_DATABASE_URL");
      context.skip();
      return;
    }
    const database = await createTestDatabase(services.postgres);
    cleanup.push(database.drop);
    const server = await startNodeServer({ DATABASE_URL: database.url });
    try {
      expect(server.output()).toMatch(/"database":"postgres"/);
      const res = await fetch(`${server.url}/health`);
      expect(await readJson(res)).toMatchObject({ status: "ok", checks: { db: "ok" } });
    } finally {
      await server.stop();
    }
  });

  it("uses Upstash for its cache when UPSTASH_REDIS_REST_URL is set", async (context) => {
    if (!services.redis) {
      announceSkip("Node entry on Upstash", "TEST_REDIS_URL");
      context.skip();
      return;
    }
    const upstash = await startUpstashRest({ redisUrl: services.redis });
    cleanup.push(() => upstash.close());
    const dataDir = await mkdtemp(join(tmpdir(), "heimdall-"));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const server = await startNodeServer({
      DATA_DIR: dataDir,
      UPSTASH_REDIS_REST_URL: upstash.url,
      UPSTASH_REDIS_REST_TOKEN: upstash.token,
    });
    try {
      expect(server.output()).toMatch(/"cache":"upstash"/);
      const res = await fetch(`${server.url}/health`);
      expect(await readJson(res)).toMatchObject({ status: "ok", checks: { cache: "ok" } });
    } finally {
      await server.stop();
    }
  });

  it("keeps revocations and rate limits in the Redis of REDIS_URL, shared by every process", async (context) => {
    if (!services.postgres || !services.redis) {
      announceSkip("Node entry on REDIS_URL", "TEST_DATABASE_URL and TEST_REDIS_URL");
      context.skip();
      return;
    }
    const database = await createTestDatabase(services.postgres);
    cleanup.push(database.drop);
    const env = {
      ...testEnv,
      DATABASE_URL: database.url,
      REDIS_URL: services.redis,
      RATE_LIMIT_ENABLED: "true",
      RATE_LIMIT_DEFAULT_PER_MINUTE: "1000",
      RATE_LIMIT_TOKEN_PER_MINUTE: "50",
    };
    // One after the other: the first applies the migrations.
    const first = await startNodeServer(env);
    const second = await startNodeServer(env).catch(async (error: unknown) => {
      await first.stop();
      throw error;
    });
    try {
      expect(first.output()).toMatch(/"cache":"redis"/);
      expect(second.output()).toMatch(/"cache":"redis"/);
      expect(await readJson(await fetch(`${second.url}/health`))).toMatchObject({
        status: "ok",
        checks: { cache: "ok" },
      });
      const tenant = await createTenant(overHttp(first.url), `redis-${Date.now().toString(36)}`);
      const me = () =>
        fetch(`${second.url}/v1/users/me`, { headers: bearer(tenant.reader.accessToken) });
      expect((await me()).status).toBe(200);
      const revoked = await send(
        overHttp(first.url),
        "POST",
        `/v1/apps/${tenant.app.name}/tokens/revoke`,
        {
          body: { token: tenant.reader.accessToken, token_type_hint: "access_token" },
        },
      );
      expect(revoked.status).toBe(200);
      // Revoked on the first process, refused by the second on its very next request.
      await expectError(await me(), 401, "unauthorized");

      // One token-endpoint budget for the client, whichever process it reaches.
      const remaining = [];
      for (const url of [first.url, second.url, first.url, second.url]) {
        const res = await send(overHttp(url), "POST", `/v1/apps/${tenant.app.name}/tokens`, {
          body: { grant_type: "refresh_token", refresh_token: "not-a-token" },
        });
        remaining.push(Number(res.headers.get("x-ratelimit-remaining")));
      }
      const [start = 0] = remaining;
      expect(start).toBeGreaterThan(0);
      expect(remaining).toEqual([start, start - 1, start - 2, start - 3]);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
    }
  });

  it("refuses to start on bad configuration, naming the variable", async () => {
    const { code, output } = await runNodeServer({ PORT: "not-a-port" });
    expect(code).toBe(1);
    expect(output).toMatch(/Invalid configuration: PORT/);
  });

  it("refuses to start when GEOIP_DATABASE_PATH names no readable database", async () => {
    const { code, output } = await runNodeServer({
      GEOIP_DATABASE_PATH: "/nonexistent/GeoLite2-City.mmdb",
      DATA_DIR: await mkdtemp(join(tmpdir(), "heimdall-geoip-")),
    });
    expect(code).toBe(1);
    expect(output).toContain("/nonexistent/GeoLite2-City.mmdb");
  });
});
