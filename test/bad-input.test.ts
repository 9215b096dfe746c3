import { describe, expect, it } from "vitest";
import { ErrorSchema } from "../src/http/openapi";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { readJson } from "./support/http";
import { bearer, createTenant } from "./support/identity";

/**
 * A first sweep of hostile input over every operation of the OpenAPI document (the full,
 * seeded fuzz suite is test/hardening/fuzz.test.ts): nothing answers 5xx, every error is in the error shape.
 */
async function check(res: Response, label: string, fails: string[]) {
  if (res.status >= 500) fails.push(`${label}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  else if (res.status >= 400) {
    const parsed = ErrorSchema.safeParse(await res.json().catch(() => null));
    if (!parsed.success) fails.push(`${label}: ${res.status} not in the error shape`);
  }
}

describe("bad input never answers 5xx", () => {
  it("hostile bodies, ids and credentials on every operation", async () => {
    const db = await createMemoryDatabase();
    const { app, logs } = createTestApp({ db });
    const t = await createTenant(app, "fz");
    const doc = await readJson(await app.request("/v1/openapi.json"));
    const bodies: unknown[] = [
      null,
      1,
      "x",
      [],
      {},
      { a: 1 },
      { name: "\u0000", email: "a@b", password: "x".repeat(100000) },
      { points: [{}] },
      { token: "a.b.c", permission: "x" },
      { grant_type: "password", email: 1 },
      { name: "ok", permissions: ["bad"] },
      { ip: "::::", reason: "x" },
    ];
    const creds = [
      {},
      adminHeaders,
      bearer(t.admin.accessToken),
      bearer("pk_x"),
      bearer("a.b.c"),
      { Authorization: "Basic !!!" },
    ];
    const fails: string[] = [];
    for (const [path, item] of Object.entries(
      doc.paths as Record<string, Record<string, unknown>>,
    )) {
      for (const method of ["get", "post", "patch", "delete", "put"]) {
        if (!item[method]) continue;
        const concrete = path.replace("{app_name}", "fz").replace(/\{[^}]+\}/g, "x%00y");
        for (const headers of creds)
          for (const body of bodies) {
            const res = await app.request(concrete, {
              method: method.toUpperCase(),
              headers: {
                ...headers,
                ...(method === "get" || method === "delete"
                  ? {}
                  : { "Content-Type": "application/json" }),
              },
              ...(method === "get" || method === "delete" ? {} : { body: JSON.stringify(body) }),
            });
            await check(res, `${method} ${concrete} ${JSON.stringify(body).slice(0, 60)}`, fails);
            if (method === "get" || method === "delete") break;
          }
      }
    }
    expect(fails).toEqual([]);
    expect(logs.filter((event) => event.message === "unhandled error")).toEqual([]);
    await db.close();
  }, 120_000);

  it("bad queries, form bodies and tracker parameters", async () => {
    const db = await createMemoryDatabase();
    const { app } = createTestApp({ db });
    const t = await createTenant(app, "fq");
    const fails: string[] = [];
    const queries = [
      "limit=-1",
      "limit=abc",
      "offset=-5",
      "limit=100000",
      "bbox=1,2,3",
      "from=yesterday",
      "device_id=%F0%9F%98%80",
      "status=weird",
      "active=maybe",
      "x=%00",
    ];
    for (const path of [
      "/v1/users",
      "/v1/roles",
      "/v1/gps",
      "/v1/devices",
      "/v1/audit-logs",
      "/v1/api-keys",
      "/v1/gps/current",
      "/v1/stats",
    ]) {
      for (const q of queries) {
        const res = await app.request(`${path}?${q}`, { headers: bearer(t.admin.accessToken) });
        await check(res, `${path}?${q}`, fails);
      }
    }
    for (const body of [
      "grant_type=password&email=a%00b&password=x",
      `grant_type=password&email=${"a".repeat(300)}&password=x`,
      "grant_type=client_credentials&client_id=%00",
      "%%%",
      "grant_type=refresh_token&refresh_token=rt_%F0%9F%98%80",
    ]) {
      const res = await app.request("/v1/apps/fq/tokens", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body,
      });
      await check(res, `token ${body.slice(0, 40)}`, fails);
    }
    for (const q of [
      "lat=1&lon=2&timestamp=abc",
      "lat=1e999&lon=2&timestamp=1",
      "lat=&lon=",
      "id=%F0%9F%98%80&lat=1&lon=1&timestamp=1763800000",
    ]) {
      const res = await app.request(`/v1/gps/osmand?key=dk_bad&${q}`);
      await check(res, `osmand ${q}`, fails);
    }
    expect(fails).toEqual([]);
    await db.close();
  }, 120_000);

  it("malformed percent-encoding in any path segment is a 400, with the limiter on", async () => {
    const db = await createMemoryDatabase();
    const { app, logs } = createTestApp({ db, env: { RATE_LIMIT_ENABLED: "true" } });
    await createTenant(app, "pe");
    const doc = await readJson(await app.request("/v1/openapi.json"));
    const paths = Object.entries(doc.paths as Record<string, Record<string, unknown>>);
    expect(paths.length).toBeGreaterThan(40);
    const fails: string[] = [];
    let sent = 0;
    for (const [path, item] of paths) {
      const segments = path.split("/");
      for (const method of ["get", "post", "patch", "delete", "put"]) {
        if (!item[method]) continue;
        // Each segment in turn, fixed or a parameter, becomes bad percent-encoding.
        for (let i = 1; i < segments.length; i++) {
          for (const bad of ["%ZZ", "%C3%28"]) {
            const concrete = segments
              .map((segment, at) =>
                at === i ? bad : segment.replace("{app_name}", "pe").replace(/\{[^}]+\}/g, "x"),
              )
              .join("/");
            const res = await app.request(concrete, {
              method: method.toUpperCase(),
              headers: { ...adminHeaders, "Content-Type": "application/json" },
              ...(method === "get" || method === "delete" ? {} : { body: "{}" }),
            });
            sent++;
            const body = await res.json().catch(() => null);
            if (res.status !== 400 || body?.error?.code !== "bad_request") {
              fails.push(`${method} ${concrete}: ${res.status} ${JSON.stringify(body)}`);
            }
          }
        }
      }
    }
    for (const path of ["/v1/%ZZ", "/%ZZ", "/v1/ws/%ZZ", "/v1/apps/%ZZ/tokens"]) {
      const res = await app.request(path, { method: "POST", body: "{}" });
      if (res.status !== 400) fails.push(`${path}: ${res.status}`);
    }
    expect(sent).toBeGreaterThan(200);
    expect(fails).toEqual([]);
    expect(logs.filter((event) => event.message === "unhandled error")).toEqual([]);
    await db.close();
  }, 120_000);
});
