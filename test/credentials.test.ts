import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  withExecutionContext,
} from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, signIn, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
const clock = createTestClock();
const admin = { headers: adminHeaders };

beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app } = createTestApp({ db, clock }));
  tenant = await createTenant(app, "papa");
});
afterAll(() => db.close());

describe("API keys", () => {
  it("shows the secret once, and it works as Bearer and as X-API-Key within its role", async () => {
    const created = await send(app, "POST", "/v1/api-keys", {
      body: { name: "dashboard", role: "api-read-only" },
      headers: bearer(tenant.admin.accessToken),
    });
    expect(created.status).toBe(201);
    const key = (await readJson(created)).data;
    expect(key).toMatchObject({ name: "dashboard", role: "api-read-only", app_id: tenant.app.id });
    expect(key.key).toMatch(/^pk_[A-Za-z0-9_-]{43}$/);
    expect(key.id).toMatch(/^key_/);

    const listed = await readJson(await send(app, "GET", "/v1/apps/papa/api-keys", admin));
    expect(JSON.stringify(listed)).not.toContain(key.key);
    expect(listed.data.map((k: { id: string }) => k.id)).toContain(key.id);

    expect((await send(app, "GET", "/v1/users", { headers: bearer(key.key) })).status).toBe(200);
    expect(
      (await send(app, "GET", "/v1/users", { headers: { "X-API-Key": key.key } })).status,
    ).toBe(200);
    await expectError(
      await send(app, "POST", "/v1/roles", {
        body: { name: "nope", permissions: [] },
        headers: { "X-API-Key": key.key },
      }),
      403,
      "forbidden",
    );
    await expectError(
      await send(app, "GET", "/v1/users/me", { headers: bearer(key.key) }),
      403,
      "forbidden",
    );
    const decision = await readJson(
      await send(app, "POST", "/v1/authorize", {
        body: { token: key.key, permission: "users:read" },
      }),
    );
    expect(decision).toEqual({
      allowed: true,
      subject: key.id,
      app: tenant.app.id,
      permissions: ["*:read"],
    });
  });

  it("is refused at once when revoked, and once expired", async () => {
    const full = await readJson(
      await send(app, "POST", "/v1/apps/papa/api-keys", {
        body: { name: "ci", role: "api-full-access" },
        ...admin,
      }),
    );
    const key = full.data.key as string;
    expect(
      (
        await send(app, "POST", "/v1/roles", {
          body: { name: "ci-made", permissions: [] },
          headers: bearer(key),
        })
      ).status,
    ).toBe(201);
    const revoked = await send(app, "DELETE", `/v1/apps/papa/api-keys/${full.data.id}`, admin);
    expect((await readJson(revoked)).data.revoked_at).not.toBeNull();
    await expectError(
      await send(app, "GET", "/v1/users", { headers: bearer(key) }),
      401,
      "unauthorized",
    );
    const decision = await readJson(
      await send(app, "POST", "/v1/authorize", { body: { token: key, permission: "users:read" } }),
    );
    expect(decision).toMatchObject({ allowed: false, reason: "invalid_token" });

    const shortLived = await readJson(
      await send(app, "POST", "/v1/apps/papa/api-keys", {
        body: {
          name: "temp",
          role: "api-read-only",
          expires_at: new Date(clock.now().getTime() + 60_000).toISOString(),
        },
        ...admin,
      }),
    );
    expect(
      (await send(app, "GET", "/v1/users", { headers: bearer(shortLived.data.key) })).status,
    ).toBe(200);
    clock.advance(61_000);
    await expectError(
      await send(app, "GET", "/v1/users", { headers: bearer(shortLived.data.key) }),
      401,
      "unauthorized",
    );
  });

  it("records last_used_at in batches, not on every request", async () => {
    const created = await readJson(
      await send(app, "POST", "/v1/apps/papa/api-keys", {
        body: { name: "usage", role: "api-read-only" },
        ...admin,
      }),
    );
    const get = async () =>
      (await readJson(await send(app, "GET", `/v1/apps/papa/api-keys/${created.data.id}`, admin)))
        .data;
    const keyed = withExecutionContext(app);
    const use = async () => {
      await send(keyed, "GET", "/v1/roles", { headers: bearer(created.data.key) });
      await keyed.afterResponses(); // the flush runs after the answer
    };
    clock.advance(61_000);
    await use(); // a minute since the last flush: this one writes
    const first = (await get()).last_used_at;
    expect(first).toBe(clock.now().toISOString());
    clock.advance(10_000);
    await use(); // within the minute: buffered, no write
    expect((await get()).last_used_at).toBe(first);
    clock.advance(61_000);
    await use();
    expect((await get()).last_used_at).toBe(clock.now().toISOString());
  });
});

describe("service credentials (M2M)", () => {
  const tokenRequest = (body: Record<string, string>, headers: Record<string, string> = {}) =>
    app.request("/v1/apps/papa/tokens", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(body),
    });
  const basic = (id: string, secret: string) => ({
    Authorization: `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`,
  });

  it("issues client_credentials tokens that verify through the JWKS like user tokens", async () => {
    const created = await send(app, "POST", "/v1/apps/papa/credentials", {
      body: { name: "billing-service", permissions: ["users:read", "billing:*"] },
      ...admin,
    });
    expect(created.status).toBe(201);
    const credential = (await readJson(created)).data;
    expect(credential).toMatchObject({
      app_id: tenant.app.id,
      name: "billing-service",
      permissions: ["users:read", "billing:*"],
    });
    expect(credential.id).toMatch(/^cred_/);
    expect(credential.client_id).toMatch(/^svc_/);
    expect(credential.client_secret).toMatch(/^sk_live_/);

    const viaBasic = await tokenRequest(
      { grant_type: "client_credentials" },
      basic(credential.client_id, credential.client_secret),
    );
    expect(viaBasic.status, await viaBasic.clone().text()).toBe(200);
    const tokens = await readJson(viaBasic);
    expect(tokens).toEqual({
      access_token: expect.any(String),
      token_type: "Bearer",
      expires_in: 3600,
      scope: "users:read billing:*",
    });
    const jwks = createLocalJWKSet(
      await readJson(await send(app, "GET", "/v1/.well-known/jwks.json")),
    );
    const { payload } = await jwtVerify(tokens.access_token, jwks, {
      issuer: "http://heimdall.test/v1/apps/papa",
      audience: "papa",
      currentDate: clock.now(),
    });
    expect(payload).toMatchObject({
      sub: credential.id,
      client_id: credential.client_id,
      app: tenant.app.id,
    });
    expect(
      (await send(app, "GET", "/v1/users", { headers: bearer(tokens.access_token) })).status,
    ).toBe(200);

    const narrowed = await readJson(
      await tokenRequest({
        grant_type: "client_credentials",
        client_id: credential.client_id,
        client_secret: credential.client_secret,
        scope: "billing:read",
      }),
    );
    expect(narrowed.scope).toBe("billing:read");
    await expectError(
      await send(app, "GET", "/v1/users", { headers: bearer(narrowed.access_token) }),
      403,
      "forbidden",
    );
    await expectError(
      await tokenRequest({
        grant_type: "client_credentials",
        client_id: credential.client_id,
        client_secret: credential.client_secret,
        scope: "users:write",
      }),
      400,
      "invalid_scope",
    );
    const wrong = await tokenRequest(
      { grant_type: "client_credentials" },
      basic(credential.client_id, "sk_live_wrong"),
    );
    expect(wrong.headers.get("www-authenticate")).toMatch(/^Basic/);
    await expectError(wrong, 401, "invalid_client");
    // Another app's token endpoint does not know this client.
    await createTenant(app, "quebec");
    await expectError(
      await app.request("/v1/apps/quebec/tokens", {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          ...basic(credential.client_id, credential.client_secret),
        },
        body: new URLSearchParams({ grant_type: "client_credentials" }),
      }),
      401,
      "invalid_client",
    );
  });

  it("keeps the old secret valid during the grace period after a rotation, and not after", async () => {
    const credential = (
      await readJson(
        await send(app, "POST", "/v1/apps/papa/credentials", {
          body: { name: "rotating", permissions: ["users:read"] },
          ...admin,
        }),
      )
    ).data;
    const rotated = await send(app, "PATCH", `/v1/apps/papa/credentials/${credential.id}`, {
      body: { rotate_secret: true, grace_period_seconds: 600 },
      ...admin,
    });
    expect(rotated.status).toBe(200);
    const fresh = (await readJson(rotated)).data;
    expect(fresh.client_secret).toMatch(/^sk_live_/);
    expect(fresh.client_secret).not.toBe(credential.client_secret);
    const grant = (secret: string) =>
      tokenRequest({ grant_type: "client_credentials" }, basic(credential.client_id, secret));
    expect((await grant(credential.client_secret)).status).toBe(200);
    expect((await grant(fresh.client_secret)).status).toBe(200);
    clock.advance(601_000);
    await expectError(await grant(credential.client_secret), 401, "invalid_client");
    expect((await grant(fresh.client_secret)).status).toBe(200);
  });

  it("refuses a revoked credential at once, its live tokens included", async () => {
    const credential = (
      await readJson(
        await send(app, "POST", "/v1/apps/papa/credentials", {
          body: { name: "doomed", permissions: ["users:read"] },
          ...admin,
        }),
      )
    ).data;
    const { access_token } = await readJson(
      await tokenRequest(
        { grant_type: "client_credentials" },
        basic(credential.client_id, credential.client_secret),
      ),
    );
    expect((await send(app, "GET", "/v1/users", { headers: bearer(access_token) })).status).toBe(
      200,
    );
    expect(
      (await send(app, "DELETE", `/v1/apps/papa/credentials/${credential.id}`, admin)).status,
    ).toBe(200);
    await expectError(
      await send(app, "GET", "/v1/users", { headers: bearer(access_token) }),
      401,
      "unauthorized",
    );
    await expectError(
      await tokenRequest(
        { grant_type: "client_credentials" },
        basic(credential.client_id, credential.client_secret),
      ),
      401,
      "invalid_client",
    );
    const audit = await readJson(
      await send(app, "GET", `/v1/apps/papa/audit-logs?target_id=${credential.id}`, admin),
    );
    expect(audit.data.map((e: { action: string }) => e.action).sort()).toEqual([
      "credential.created",
      "credential.revoked",
    ]);
  });

  it("is the platform admin's: an app user cannot manage credentials", async () => {
    await expectError(
      await send(app, "GET", "/v1/credentials", { headers: bearer(tenant.admin.accessToken) }),
      404,
      "not_found",
    );
    await expectError(
      await send(app, "GET", "/v1/apps/papa/credentials", {
        headers: bearer(tenant.admin.accessToken),
      }),
      403,
      "forbidden",
    );
  });
});

describe("sessions", () => {
  it("lists a user's sessions, ends one, then all but the current one", async () => {
    const user = await createTenant(app, "romeo");
    const second = await signIn(app, "romeo", user.reader.email);
    const third = await signIn(app, "romeo", user.reader.email);
    const listed = await readJson(
      await send(app, "GET", "/v1/users/me/sessions", { headers: bearer(third.accessToken) }),
    );
    expect(listed.data).toHaveLength(3);
    expect(listed.data.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    expect(listed.data[0]).toMatchObject({ id: expect.stringMatching(/^ses_/), location: null });

    const secondId = listed.data.find((s: { id: string; current: boolean }) => !s.current)
      .id as string;
    // End the session of `second`, whichever of the two non-current ones it is.
    const ended = await send(app, "DELETE", `/v1/users/me/sessions/${secondId}`, {
      headers: bearer(third.accessToken),
    });
    expect(ended.status).toBe(204);
    const refresh = (token: string) =>
      send(app, "POST", "/v1/apps/romeo/tokens/refresh", { body: { refresh_token: token } });
    const results = await Promise.all([
      refresh(user.reader.refreshToken),
      refresh(second.refreshToken),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);

    const others = await send(app, "DELETE", "/v1/users/me/sessions", {
      headers: bearer(third.accessToken),
    });
    expect((await readJson(others)).data.ended).toBe(1);
    const left = await readJson(
      await send(app, "GET", "/v1/users/me/sessions", { headers: bearer(third.accessToken) }),
    );
    expect(left.data.map((s: { current: boolean }) => s.current)).toEqual([true]);
    await expectError(
      await send(app, "DELETE", `/v1/users/me/sessions/${secondId}`, {
        headers: bearer(third.accessToken),
      }),
      404,
      "not_found",
    );
  });
});
