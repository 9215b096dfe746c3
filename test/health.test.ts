import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabasePort } from "../src/ports";
import { health } from "../src/routes/health/health.routes";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { readBody } from "./support/http";

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

describe("health", () => {
  it.each(["/health", "/v1/health"])("GET %s answers ok with its checks", async (path) => {
    const { app } = createTestApp({ db });
    const res = await app.request(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await readBody(res, health, 200)).toEqual({
      status: "ok",
      timestamp: "2026-11-23T10:00:00.000Z",
      checks: { db: "ok", cache: "ok" },
    });
  });

  it("answers 503 naming the failed check when the database is down", async () => {
    const brokenDb = await createMemoryDatabase();
    await brokenDb.close();
    const { app, logs } = createTestApp({ db: brokenDb });
    const res = await app.request("/health");
    expect(res.status).toBe(503);
    const body = await readBody(res, health, 503);
    expect(body).toMatchObject({ status: "error", checks: { db: "error", cache: "ok" } });
    expect(logs.some((e) => e.message === "health check failed" && e.check === "db")).toBe(true);
  });

  it("answers 503 when the cache does not answer", async () => {
    const { app } = createTestApp({
      db,
      ports: {
        revocations: {
          revoke: async () => {},
          spend: async () => true,
          revokeIssuedBefore: async () => {},
          isRevoked: async () => false,
          revokedAmong: async (queries) => queries.map(() => false),
          ping: () => Promise.reject(new Error("connection refused")),
        },
      },
    });
    const res = await app.request("/v1/health");
    expect(res.status).toBe(503);
    expect(await readBody(res, health, 503)).toMatchObject({
      status: "error",
      checks: { db: "ok", cache: "error" },
    });
  });
});
