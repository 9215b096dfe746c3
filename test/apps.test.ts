import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, Ports } from "../src/ports";
import { resolveSettings } from "../src/services/settings";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, signIn } from "./support/identity";

let db: DatabasePort;
let app: App;
let ports: Ports;
const clock = createTestClock();
beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app, ports } = createTestApp({ db, clock }));
});
afterAll(() => db.close());

const admin = { headers: adminHeaders };
const jwksOf = async (name: string) =>
  createLocalJWKSet(
    await readJson(await send(app, "GET", `/v1/apps/${name}/.well-known/jwks.json`)),
  );

describe("apps", () => {
  it("creates, lists, gets, updates and refuses duplicates case-insensitively", async () => {
    const created = await send(app, "POST", "/v1/apps", {
      body: { name: "echo", display_name: "Echo" },
      ...admin,
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("location")).toBe("http://heimdall.test/v1/apps/echo");
    await expectError(
      await send(app, "POST", "/v1/apps", {
        body: { name: "echo", display_name: "Again" },
        ...admin,
      }),
      409,
      "conflict",
    );
    await expectError(
      await send(app, "POST", "/v1/apps", {
        body: { name: "Bad Name!", display_name: "x" },
        ...admin,
      }),
      400,
      "validation_error",
    );
    const updated = await send(app, "PATCH", "/v1/apps/ECHO", {
      body: { display_name: "Echo Inc.", metadata: { tier: "gold" } },
      ...admin,
    });
    expect((await readJson(updated)).data).toMatchObject({
      display_name: "Echo Inc.",
      metadata: { tier: "gold" },
    });
    const list = await readJson(await send(app, "GET", "/v1/apps?limit=1", admin));
    expect(list.pagination).toMatchObject({ limit: 1, offset: 0 });
    expect(list.data).toHaveLength(1);
    if (list.pagination.has_more) expect(list._links.next).toContain("offset=1");
    await expectError(await send(app, "GET", "/v1/apps/nope", admin), 404, "not_found");
  });
});

describe("settings and keys", () => {
  it("answers defaults, changes lifetimes, and switches the signing algorithm", async () => {
    const tenant = await createTenant(app, "foxtrot");
    const settings = await readJson(await send(app, "GET", "/v1/apps/foxtrot/settings", admin));
    expect(settings.data).toMatchObject({
      access_token_ttl: 3600,
      refresh_reuse_interval: 0,
      signing_algorithm: "RS256",
      password_policy: { min_length: 10 },
    });
    for (const alg of ["ES256", "EdDSA"] as const) {
      const changed = await send(app, "PATCH", "/v1/settings", {
        body: { signing_algorithm: alg, access_token_ttl: 600 },
        headers: bearer(tenant.admin.accessToken),
      });
      expect(changed.status, await changed.clone().text()).toBe(200);
      const { accessToken } = await signIn(app, "foxtrot", tenant.reader.email);
      expect(decodeProtectedHeader(accessToken).alg).toBe(alg);
      const { payload } = await jwtVerify(accessToken, await jwksOf("foxtrot"), {
        issuer: "http://heimdall.test/v1/apps/foxtrot",
        audience: "foxtrot",
        currentDate: ports.clock.now(),
      });
      expect(payload.exp! - payload.iat!).toBe(600);
    }
    await expectError(
      await send(app, "PATCH", "/v1/settings", {
        body: { signing_algorithm: "HS256" },
        headers: bearer(tenant.admin.accessToken),
      }),
      400,
      "validation_error",
    );
    await expectError(
      await send(app, "PATCH", "/v1/settings", {
        body: { access_token_ttl: 60 },
        headers: bearer(tenant.reader.accessToken),
      }),
      403,
      "forbidden",
    );
  });

  it("writes only the settings a PATCH names: the others, and the signing key, stay", async () => {
    await createTenant(app, "hotel-settings");
    const base = "/v1/apps/hotel-settings";
    const first = await send(app, "PATCH", `${base}/settings`, {
      ...admin,
      body: { signing_algorithm: "ES256", access_token_ttl: 900 },
    });
    expect(first.status, await first.clone().text()).toBe(200);
    const keysBefore = await readJson(await send(app, "GET", `${base}/.well-known/jwks.json`));

    const second = await send(app, "PATCH", `${base}/settings`, {
      ...admin,
      body: { signup: "open", account_return_url: "https://app.example/welcome" },
    });
    expect(second.status, await second.clone().text()).toBe(200);
    expect((await readJson(second)).data).toMatchObject({
      signing_algorithm: "ES256",
      access_token_ttl: 900,
      signup: "open",
      account_return_url: "https://app.example/welcome",
    });
    const stored = await readJson(await send(app, "GET", `${base}/settings`, admin));
    expect(stored.data).toMatchObject({ signing_algorithm: "ES256", access_token_ttl: 900 });
    // No second rotation: the JWKS holds the same keys as after the algorithm change.
    const keysAfter = await readJson(await send(app, "GET", `${base}/.well-known/jwks.json`));
    expect(keysAfter.keys.map((key: { kid: string }) => key.kid)).toEqual(
      keysBefore.keys.map((key: { kid: string }) => key.kid),
    );
    await expectError(
      await send(app, "PATCH", `${base}/settings`, {
        ...admin,
        body: { account_return_url: "javascript:alert(1)" },
      }),
      400,
      "validation_error",
    );
  });

  it("rotates keys while earlier tokens keep verifying against the JWKS", async () => {
    const tenant = await createTenant(app, "golf");
    const before = decodeProtectedHeader(tenant.reader.accessToken).kid;
    const rotated = await send(app, "POST", "/v1/apps/golf/keys/rotate", admin);
    expect(rotated.status).toBe(201);
    const { kid } = (await readJson(rotated)).data;
    expect(kid).not.toBe(before);
    const jwks = await readJson(await send(app, "GET", "/v1/apps/golf/.well-known/jwks.json"));
    expect(jwks.keys.map((key: { kid: string }) => key.kid)).toEqual(
      expect.arrayContaining([kid, before]),
    );
    const res = await send(app, "GET", "/v1/users/me", {
      headers: bearer(tenant.reader.accessToken),
    });
    expect(res.status).toBe(200);
    const fresh = await signIn(app, "golf", tenant.reader.email);
    expect(decodeProtectedHeader(fresh.accessToken).kid).toBe(kid);
    const audit = await readJson(
      await send(app, "GET", "/v1/apps/golf/audit-logs?action=keys.rotated", admin),
    );
    expect(audit.data).toHaveLength(1);
  });

  it("stores private keys encrypted", async () => {
    const rows = await db.session().db.query.signingKeys.findMany();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.private_jwk_encrypted).toMatch(/^v1\./);
      expect(row.private_jwk_encrypted).not.toContain('"d"');
    }
  });
});

describe("per-app CORS origins", () => {
  it("lets an app's own origins call the API, beside CORS_ORIGINS", async () => {
    const { app: strict } = createTestApp({
      db,
      env: { CORS_ORIGINS: "https://console.example.com" },
    });
    const preflight = (origin: string) =>
      strict.request("/v1/users/me", {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "GET" },
      });
    const tenantOrigin = "https://tracker.oscar.example";
    expect((await preflight(tenantOrigin)).headers.get("access-control-allow-origin")).toBeNull();
    await createTenant(strict, "oscar");
    const changed = await send(strict, "PATCH", "/v1/apps/oscar/settings", {
      body: { cors_origins: [tenantOrigin] },
      ...admin,
    });
    expect(changed.status).toBe(200);
    // A new isolate (or a minute later) sees the app's origins.
    const { app: fresh } = createTestApp({
      db,
      env: { CORS_ORIGINS: "https://console.example.com" },
    });
    const res = await fresh.request("/v1/users/me", {
      method: "OPTIONS",
      headers: { Origin: tenantOrigin, "Access-Control-Request-Method": "GET" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe(tenantOrigin);
    const other = await fresh.request("/v1/users/me", {
      method: "OPTIONS",
      headers: { Origin: "https://evil.example", "Access-Control-Request-Method": "GET" },
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("resolved settings", () => {
  it("parses a stored settings object once and a changed one again", () => {
    const stored = { access_token_ttl: 900 };
    const first = resolveSettings(stored);
    expect(first).toMatchObject({ access_token_ttl: 900, signing_algorithm: "RS256" });
    expect(resolveSettings(stored)).toBe(first);
    expect(resolveSettings({ ...stored, signing_algorithm: "ES256" })).toMatchObject({
      access_token_ttl: 900,
      signing_algorithm: "ES256",
    });
    expect(resolveSettings(null)).toBe(resolveSettings(undefined));
    expect(resolveSettings(null).access_token_ttl).toBe(3600);
  });
});
