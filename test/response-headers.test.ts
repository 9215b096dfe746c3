import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { type Listening, listen } from "./support/server";

const ORIGIN = "https://console.example.com";

/** `hono/secure-headers`' defaults, which every response carries. */
const secure = {
  "cross-origin-resource-policy": "same-origin",
  "cross-origin-opener-policy": "same-origin",
  "origin-agent-cluster": "?1",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=15552000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-dns-prefetch-control": "off",
  "x-download-options": "noopen",
  "x-frame-options": "SAMEORIGIN",
  "x-permitted-cross-domain-policies": "none",
  "x-xss-protection": "0",
};
const exposed =
  "X-Request-Id,X-RateLimit-Limit,X-RateLimit-Remaining,X-RateLimit-Reset,Retry-After";

let db: DatabasePort;
let server: Listening;
beforeAll(async () => {
  db = await createMemoryDatabase();
  const { app } = createTestApp({
    db,
    env: { CORS_ORIGINS: ORIGIN, RATE_LIMIT_ENABLED: "true" },
  });
  server = await listen(app);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

function expectHeaders(res: Response, options: { cors: boolean }) {
  for (const [name, value] of Object.entries(secure)) {
    expect(res.headers.get(name), name).toBe(value);
  }
  expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.headers.get("access-control-expose-headers")).toBe(exposed);
  expect(res.headers.get("vary")).toMatch(/Origin/);
  expect(res.headers.get("access-control-allow-origin")).toBe(options.cors ? ORIGIN : null);
}

describe("the headers of every response", () => {
  it("a JSON answer, with and without an allowed Origin", async () => {
    const plain = await fetch(`${server.url}/v1`);
    expect(plain.status).toBe(200);
    expectHeaders(plain, { cors: false });
    expect(plain.headers.get("x-ratelimit-limit")).not.toBeNull();

    const cors = await fetch(`${server.url}/v1`, { headers: { Origin: ORIGIN } });
    expect(cors.status).toBe(200);
    expectHeaders(cors, { cors: true });
  });

  it("an error from the route and one from the rate limiter's authentication", async () => {
    const missing = await fetch(`${server.url}/v1/nothing-here`, { headers: { Origin: ORIGIN } });
    expect(missing.status).toBe(404);
    expectHeaders(missing, { cors: true });

    const refused = await fetch(`${server.url}/v1/users/me`, {
      headers: { Origin: ORIGIN, Authorization: "Bearer not-a-token" },
    });
    expect(refused.status).toBe(401);
    expectHeaders(refused, { cors: true });
  });

  it("a response Yoga built (GraphQL), with the rate-limit headers", async () => {
    const res = await fetch(`${server.url}/v1/gql`, {
      method: "POST",
      headers: { ...adminHeaders, "content-type": "application/json", Origin: ORIGIN },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    expectHeaders(res, { cors: true });
    expect(res.headers.get("x-ratelimit-limit")).not.toBeNull();
  });

  it("a preflight, answered 204 with the allowed methods and headers", async () => {
    const res = await fetch(`${server.url}/v1`, {
      method: "OPTIONS",
      headers: {
        Origin: ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("access-control-allow-headers")).toBe(
      "Authorization,Content-Type,X-API-Key,X-Request-Id",
    );
    expect(res.headers.get("access-control-max-age")).toBe("600");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });
});
