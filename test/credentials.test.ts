import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { listAuditLogs } from "../src/routes/audit/audit.routes";
import { createCredential, updateCredential } from "../src/routes/credentials/credentials.routes";
import { jwks as jwksRoute } from "../src/routes/discovery/discovery.routes";
import { issueToken } from "../src/routes/tokens/tokens.routes";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readBody } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

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
    const credential = (await readBody(created, createCredential, 201)).data;
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
    const tokens = await readBody(viaBasic, issueToken, 200);
    expect(tokens).toEqual({
      access_token: expect.any(String),
      token_type: "Bearer",
      expires_in: 3600,
      scope: "users:read billing:*",
    });
    const jwks = createLocalJWKSet(
      await readBody(await send(app, "GET", "/v1/.well-known/jwks.json"), jwksRoute, 200),
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

    const narrowed = await readBody(
      await tokenRequest({
        grant_type: "client_credentials",
        client_id: credential.client_id,
        client_secret: credential.client_secret,
        scope: "billing:read",
      }),
      issueToken,
      200,
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
      await readBody(
        await send(app, "POST", "/v1/apps/papa/credentials", {
          body: { name: "rotating", permissions: ["users:read"] },
          ...admin,
        }),
        createCredential,
        201,
      )
    ).data;
    const rotated = await send(app, "PATCH", `/v1/apps/papa/credentials/${credential.id}`, {
      body: { rotate_secret: true, grace_period_seconds: 600 },
      ...admin,
    });
    expect(rotated.status).toBe(200);
    const fresh = (await readBody(rotated, updateCredential, 200)).data;
    expect(fresh.client_secret).toMatch(/^sk_live_/);
    expect(fresh.client_secret).not.toBe(credential.client_secret);
    const grant = (secret: string) =>
      tokenRequest({ grant_type: "client_credentials" }, basic(credential.client_id, secret));
    expect((await grant(credential.client_secret)).status).toBe(200);
    expect((await grant(fresh.client_secret!)).status).toBe(200);
    clock.advance(601_000);
    await expectError(await grant(credential.client_secret), 401, "invalid_client");
    expect((await grant(fresh.client_secret!)).status).toBe(200);
  });

  it("refuses a revoked credential at once, its live tokens included", async () => {
    const credential = (
      await readBody(
        await send(app, "POST", "/v1/apps/papa/credentials", {
          body: { name: "doomed", permissions: ["users:read"] },
          ...admin,
        }),
        createCredential,
        201,
      )
    ).data;
    const { access_token } = await readBody(
      await tokenRequest(
        { grant_type: "client_credentials" },
        basic(credential.client_id, credential.client_secret),
      ),
      issueToken,
      200,
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
    const audit = await readBody(
      await send(app, "GET", `/v1/apps/papa/audit-logs?target_id=${credential.id}`, admin),
      listAuditLogs,
      200,
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
