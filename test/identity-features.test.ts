import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, Ports } from "../src/ports";
import type { Services } from "../src/services/context";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, signIn } from "./support/identity";

let db: DatabasePort;
let app: App;
let ports: Ports;
let services: Services;
const clock = createTestClock();
beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app, ports, services } = createTestApp({ db, clock }));
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

describe("users and roles", () => {
  it("keeps emails unique per app regardless of case, and checks the password policy", async () => {
    await createTenant(app, "hotel");
    await expectError(
      await send(app, "POST", "/v1/apps/hotel/users", {
        body: { email: "READER@hotel.test", password: PASSWORD },
        ...admin,
      }),
      409,
      "conflict",
    );
    const weak = await send(app, "POST", "/v1/apps/hotel/users", {
      body: { email: "weak@hotel.test", password: "short" },
      ...admin,
    });
    const body = await expectError(weak, 400, "validation_error");
    expect(body.error.details?.[0]?.field).toBe("json.password");
    await expectError(
      await send(app, "POST", "/v1/apps/hotel/users", {
        body: { email: "x@hotel.test", password: PASSWORD, role: "ghost" },
        ...admin,
      }),
      400,
      "validation_error",
    );
    // The same email in another app is another user.
    await createTenant(app, "india");
    const users = await readJson(
      await send(app, "GET", "/v1/apps/india/users?email=reader@hotel.test", admin),
    );
    expect(users.data).toEqual([]);
  });

  it("assigns and removes roles, and the next token carries the change", async () => {
    const tenant = await createTenant(app, "juliet");
    const writer = await send(app, "POST", "/v1/roles", {
      body: { name: "writer", permissions: ["projects:write", "gps:*"] },
      headers: bearer(tenant.admin.accessToken),
    });
    expect(writer.status).toBe(201);
    const assigned = await send(app, "POST", `/v1/users/${tenant.reader.id}/roles`, {
      body: { role: "writer" },
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(assigned)).data.roles).toEqual(["reader", "writer"]);
    const { accessToken } = await signIn(app, "juliet", tenant.reader.email);
    const decision = await readJson(
      await send(app, "POST", "/v1/authorize", {
        body: { token: accessToken, permission: "gps:read" },
      }),
    );
    expect(decision).toMatchObject({
      allowed: true,
      permissions: ["gps:*", "projects:read", "projects:write"],
    });
    const removed = await send(app, "DELETE", `/v1/users/${tenant.reader.id}/roles/writer`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(removed)).data.roles).toEqual(["reader"]);
    const audit = await readJson(
      await send(app, "GET", `/v1/audit-logs?target_id=${tenant.reader.id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    expect(audit.data.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(["role.assigned", "role.removed"]),
    );
    const one = await send(app, "GET", `/v1/audit-logs/${audit.data[0].id}`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(one)).data).toMatchObject({
      id: audit.data[0].id,
      app_id: tenant.app.id,
    });
  });

  it("lists the permission catalogue and answers /v1/users/me and /v1/auth/validate", async () => {
    const tenant = await createTenant(app, "kilo");
    const catalogue = await readJson(
      await send(app, "GET", "/v1/permissions", { headers: bearer(tenant.admin.accessToken) }),
    );
    expect(catalogue.data.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["users:read", "gps:read", "devices:write"]),
    );
    const me = await readJson(
      await send(app, "GET", "/v1/users/me", { headers: bearer(tenant.reader.accessToken) }),
    );
    expect(me.data).toMatchObject({
      id: tenant.reader.id,
      email: tenant.reader.email,
      roles: ["reader"],
    });
    const valid = await readJson(
      await send(app, "POST", "/v1/auth/validate", { body: { token: tenant.reader.accessToken } }),
    );
    expect(valid).toEqual({
      valid: true,
      user: {
        id: tenant.reader.id,
        email: tenant.reader.email,
        role: "reader",
        roles: ["reader"],
        app_id: tenant.app.id,
      },
    });
    expect(
      await readJson(await send(app, "POST", "/v1/auth/validate", { body: { token: "nope" } })),
    ).toEqual({ valid: false, reason: "malformed_token" });
    await expectError(await send(app, "GET", "/v1/users/me", admin), 403, "forbidden");
  });
});

describe("sign-in and refresh", () => {
  it("answers a wrong password and an unknown email alike, and audits both", async () => {
    const tenant = await createTenant(app, "lima");
    for (const email of [tenant.reader.email, "nobody@lima.test"]) {
      const res = await send(app, "POST", "/v1/apps/lima/tokens", {
        body: { grant_type: "password", email, password: "wrong password!" },
      });
      const body = await expectError(res, 400, "invalid_grant");
      expect(body.error.message).toBe("Invalid email or password");
    }
    const failed = await readJson(
      await send(app, "GET", "/v1/apps/lima/audit-logs?action=auth.login.failed", admin),
    );
    expect(
      failed.data.map((e: { metadata: { reason: string } }) => e.metadata.reason).sort(),
    ).toEqual(["unknown_user", "wrong_password"]);
    await expectError(
      await send(app, "POST", "/v1/apps/lima/tokens", { body: { grant_type: "magic" } }),
      400,
      "unsupported_grant_type",
    );
    await expectError(
      await send(app, "POST", "/v1/apps/lima/tokens", { body: { grant_type: "password" } }),
      400,
      "invalid_request",
    );
  });

  it("gives parallel tabs the same successor within the reuse interval, and kills the family after", async () => {
    const tenant = await createTenant(app, "mike");
    await send(app, "PATCH", "/v1/apps/mike/settings", {
      body: { refresh_reuse_interval: 30 },
      ...admin,
    });
    const { refreshToken } = await signIn(app, "mike", tenant.reader.email);
    const refresh = (token: string) =>
      send(app, "POST", "/v1/apps/mike/tokens/refresh", { body: { refresh_token: token } });
    const [first, second] = await Promise.all([refresh(refreshToken), refresh(refreshToken)]);
    expect([first.status, second.status]).toEqual([200, 200]);
    const successorA = (await readJson(first)).refresh_token;
    const successorB = (await readJson(second)).refresh_token;
    expect(successorA).toBe(successorB);
    expect(successorA).not.toBe(refreshToken);

    clock.advance(31_000);
    await expectError(await refresh(refreshToken), 400, "invalid_grant");
    await expectError(await refresh(successorA), 400, "invalid_grant");
  });
});

describe("the hot path", () => {
  it("authorizes and verifies with no database read once the key is cached", async () => {
    const tenant = await createTenant(app, "november");
    const warm = await send(app, "POST", "/v1/authorize", {
      body: { token: tenant.reader.accessToken, permission: "projects:read" },
    });
    expect((await readJson(warm)).allowed).toBe(true);
    let opened = 0;
    const counting: DatabasePort = {
      ...db,
      session: () => {
        opened += 1;
        return db.session();
      },
    };
    const { app: observed } = createTestApp({
      db: counting,
      ports: { clock: ports.clock },
      services: { keys: services.keys },
    });
    const res = await send(observed, "POST", "/v1/authorize", {
      body: { token: tenant.reader.accessToken, permission: "projects:read" },
    });
    expect((await readJson(res)).allowed).toBe(true);
    expect(opened).toBe(0);
  });
});
