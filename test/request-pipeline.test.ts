import { createRoute, z } from "@hono/zod-openapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../src/lib/errors";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { expectError } from "./support/http";

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

/** The app plus two routes that exercise the cross-cutting behaviour: a JSON body and a crash. */
function appWithProbeRoutes(env: Record<string, string> = {}) {
  const instance = createTestApp({ db, env });
  instance.app.openapi(
    createRoute({
      method: "post",
      path: "/v1/probe",
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({ name: z.string().min(1), count: z.number().int() }),
            },
          },
        },
      },
      responses: { 200: { description: "echo" } },
    }),
    (c) => c.json(c.req.valid("json"), 200),
  );
  instance.app.get("/v1/crash", () => {
    throw new Error("secret connection string postgres://user:hunter2@db");
  });
  instance.app.get("/v1/teapot", () => {
    throw new ApiError("conflict", "Already exists", {
      details: [{ field: "name", reason: "taken" }],
    });
  });
  return instance;
}

describe("request id", () => {
  it("echoes a caller's X-Request-Id", async () => {
    const { app } = createTestApp({ db });
    const res = await app.request("/v1", { headers: { "X-Request-Id": "trace-abc_123" } });
    expect(res.headers.get("x-request-id")).toBe("trace-abc_123");
  });

  it("generates one when absent or unsafe, and puts it in error bodies", async () => {
    const { app } = createTestApp({ db });
    const res = await app.request("/v1/missing", { headers: { "X-Request-Id": "<script>" } });
    const id = res.headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const body = await expectError(res, 404, "not_found");
    expect(body.error.request_id).toBe(id);
  });
});

describe("structured logs", () => {
  it("logs one JSON event per request with the request id, without the query", async () => {
    const { app, logs } = createTestApp({ db });
    await app.request("/v1?token=secret-device-token", { headers: { "X-Request-Id": "req-1" } });
    const event = logs.find((e) => e.message === "request");
    expect(event).toMatchObject({
      level: "info",
      request_id: "req-1",
      method: "GET",
      path: "/v1",
      status: 200,
    });
    expect(typeof event?.duration_ms).toBe("number");
    expect(JSON.stringify(logs)).not.toContain("secret-device-token");
  });
});

describe("CORS", () => {
  it("allows only the configured origins", async () => {
    const { app } = createTestApp({
      db,
      env: { CORS_ORIGINS: "https://console.example.com, https://other.example.com" },
    });
    const preflight = await app.request("/v1", {
      method: "OPTIONS",
      headers: {
        Origin: "https://console.example.com",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(
      "https://console.example.com",
    );
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/Authorization/);

    const foreign = await app.request("/v1", { headers: { Origin: "https://evil.example.com" } });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("errors in the one shape", () => {
  it("404 for an unknown route", async () => {
    const { app } = appWithProbeRoutes();
    const body = await expectError(await app.request("/v1/nothing-here"), 404, "not_found");
    expect(body.error.message).toBe("No route for GET /v1/nothing-here");
  });

  it("405 with Allow for a known path and another method", async () => {
    const { app } = appWithProbeRoutes();
    const res = await app.request("/v1/health", { method: "DELETE" });
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    await expectError(res, 405, "method_not_allowed");
    const probe = await app.request("/v1/probe");
    expect(probe.headers.get("allow")).toBe("POST");
    await expectError(probe, 405, "method_not_allowed");
  });

  it("400 for malformed JSON", async () => {
    const { app } = appWithProbeRoutes();
    const res = await app.request("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"name": "a",',
    });
    const body = await expectError(res, 400, "bad_request");
    expect(body.error.message).toMatch(/JSON/);
  });

  it("400 validation_error with one detail per bad field", async () => {
    const { app } = appWithProbeRoutes();
    const res = await app.request("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: "", count: "three" }),
    });
    const body = await expectError(res, 400, "validation_error");
    expect(body.error.details?.map((d) => d.field).sort()).toEqual(["json.count", "json.name"]);
  });

  it("415 for a body that is not JSON", async () => {
    const { app } = appWithProbeRoutes();
    const res = await app.request("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: "name=a&count=1",
    });
    await expectError(res, 415, "unsupported_media_type");
  });

  it("413 for a body over MAX_BODY_BYTES, declared or streamed", async () => {
    const { app } = appWithProbeRoutes({ MAX_BODY_BYTES: "1024" });
    const big = JSON.stringify({ name: "x".repeat(2000), count: 1 });
    const declared = await app.request("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Content-Length": String(big.length) },
      body: big,
    });
    await expectError(declared, 413, "payload_too_large");

    const streamed = await app.request("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: new Blob([big]).stream(),
      duplex: "half",
    } as RequestInit);
    await expectError(streamed, 413, "payload_too_large");
  });

  it("an ApiError keeps its status, code and details", async () => {
    const { app } = appWithProbeRoutes();
    const body = await expectError(await app.request("/v1/teapot"), 409, "conflict");
    expect(body.error.details).toEqual([{ field: "name", reason: "taken" }]);
  });

  it("500 for a thrown error, logged but never leaked", async () => {
    const { app, logs } = appWithProbeRoutes();
    const res = await app.request("/v1/crash");
    const raw = await res.clone().text();
    const body = await expectError(res, 500, "internal_error");
    expect(body.error.message).toBe("Internal server error");
    expect(raw).not.toMatch(/hunter2|at |\.ts/);
    const logged = logs.find((e) => e.message === "unhandled error");
    expect(logged?.request_id).toBe(body.error.request_id);
    expect(JSON.stringify(logged)).toContain("secret connection string");
  });

  it("a valid request still passes through all of it", async () => {
    const { app } = appWithProbeRoutes();
    const res = await app.request("/v1/probe", {
      method: "POST",
      headers: { "Content-Type": "application/json; charset=utf-8" },
      body: JSON.stringify({ name: "ok", count: 2 }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: "ok", count: 2 });
  });
});

describe("routing and bodies on the fast path", () => {
  function appWithFormAndPathRoutes() {
    const instance = createTestApp({ db });
    instance.app.openapi(
      createRoute({
        method: "post",
        path: "/v1/probe-form",
        request: {
          body: {
            required: true,
            content: {
              "application/x-www-form-urlencoded": {
                schema: z.object({ grant_type: z.string(), scope: z.string().optional() }),
              },
              "multipart/form-data": {
                schema: z.object({ grant_type: z.string(), scope: z.string().optional() }),
              },
            },
          },
        },
        responses: { 200: { description: "echo" } },
      }),
      async (c) => c.json({ valid: c.req.valid("form"), parsed: await c.req.parseBody() }, 200),
    );
    instance.app.get("/v1/probe-path/mine", (c) => c.json({ literal: true }));
    instance.app.get("/v1/probe-path/:id", (c) => c.json({ id: c.req.param("id") }));
    return instance;
  }

  it("a URL-encoded body reaches the validator and parseBody decoded as a multipart one does", async () => {
    const { app } = appWithFormAndPathRoutes();
    const encoded = await app.request("/v1/probe-form", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&scope=gps%3Aread+gps%3Awrite&extra=%C3%A9",
    });
    expect(encoded.status).toBe(200);
    const multipart = new FormData();
    multipart.set("grant_type", "client_credentials");
    multipart.set("scope", "gps:read gps:write");
    multipart.set("extra", "é");
    const viaMultipart = await app.request("/v1/probe-form", { method: "POST", body: multipart });
    expect(viaMultipart.status).toBe(200);
    const body = await encoded.json();
    expect(body).toEqual({
      valid: { grant_type: "client_credentials", scope: "gps:read gps:write" },
      parsed: { grant_type: "client_credentials", scope: "gps:read gps:write", extra: "é" },
    });
    expect(await viaMultipart.json()).toEqual(body);
    const missing = await app.request("/v1/probe-form", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "scope=x",
    });
    await expectError(missing, 400, "validation_error");
  });

  it("a path asked again is routed as the first time: literal beside parameter, each id its own", async () => {
    const { app } = appWithFormAndPathRoutes();
    for (let round = 0; round < 2; round++) {
      expect(await (await app.request("/v1/probe-path/mine")).json()).toEqual({ literal: true });
      expect(await (await app.request("/v1/probe-path/a1")).json()).toEqual({ id: "a1" });
      expect(await (await app.request("/v1/probe-path/b2")).json()).toEqual({ id: "b2" });
      expect((await app.request("/v1/probe-path/a1", { method: "DELETE" })).status).toBe(405);
    }
    // More distinct paths than the router remembers: each still gets its own parameter.
    for (let i = 0; i < 2100; i += 1) {
      const res = await app.request(`/v1/probe-path/n${i}`);
      if (i % 350 === 0) expect(await res.json()).toEqual({ id: `n${i}` });
    }
    expect(await (await app.request("/v1/probe-path/a1")).json()).toEqual({ id: "a1" });
  });
});
