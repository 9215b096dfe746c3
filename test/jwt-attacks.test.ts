import {
  base64url,
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  exportSPKI,
  importJWK,
  type JWK,
  SignJWT,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, Ports } from "../src/ports";
import { issuerFor } from "../src/services/access-tokens";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError } from "./support/http";
import { bearer, createTenant, send, signIn, type Tenant } from "./support/identity";

/**
 * Forged, stale and revoked tokens on a protected route: each must be refused with 401 in the
 * error shape, and a fresh genuine token accepted (so a refusal is not a broken route).
 */
describe("JWT attacks on protected routes", () => {
  let db: DatabasePort;
  let app: App;
  let ports: Ports;
  let a: Tenant;
  let b: Tenant;
  const issuerBase = "http://heimdall.test";

  beforeAll(async () => {
    db = await createMemoryDatabase();
    ({ app, ports } = createTestApp({ db }));
    a = await createTenant(app, "alpha");
    b = await createTenant(app, "bravo");
  });
  afterAll(() => db.close());

  /** Signs claims with app A's real private key, as only Heimdall could. */
  async function signWithAppKey(
    tenant: Tenant,
    claims: Record<string, unknown>,
    header: Record<string, unknown> = {},
  ) {
    const key = await ports.keys.signingKey(db.session().db, tenant.app.id, "RS256");
    const now = Math.floor(ports.clock.now().getTime() / 1000);
    return new SignJWT({
      iss: issuerFor(issuerBase, tenant.app.name),
      sub: tenant.admin.id,
      aud: tenant.app.name,
      app: tenant.app.id,
      roles: ["admin"],
      permissions: ["*:*"],
      jti: crypto.randomUUID(),
      iat: now,
      exp: now + 600,
      ...claims,
    })
      .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "at+jwt", ...header })
      .sign(key.privateKey);
  }

  const protectedRoutes = ["/v1/users/me", "/v1/users", "/v1/roles", "/v1/settings"];

  async function expectRefused(token: string) {
    for (const path of protectedRoutes) {
      const res = await send(app, "GET", path, { headers: bearer(token) });
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await expectError(res, 401, "unauthorized");
    }
  }

  it("accepts a genuine token (the control case)", async () => {
    const token = await signWithAppKey(a, {});
    for (const path of protectedRoutes) {
      expect((await send(app, "GET", path, { headers: bearer(token) })).status).toBe(200);
    }
  });

  it("refuses a missing or garbage credential", async () => {
    for (const path of protectedRoutes) {
      await expectError(await send(app, "GET", path), 401, "unauthorized");
      await expectError(
        await send(app, "GET", path, { headers: bearer("garbage") }),
        401,
        "unauthorized",
      );
      await expectError(
        await send(app, "GET", path, { headers: { Authorization: "Basic Zm9vOmJhcg==" } }),
        401,
        "unauthorized",
      );
    }
  });

  it("refuses alg: none", async () => {
    const genuine = await signWithAppKey(a, {});
    const [, payload] = genuine.split(".");
    const header = base64url.encode(
      JSON.stringify({ alg: "none", typ: "at+jwt", kid: decodeProtectedHeader(genuine).kid }),
    );
    await expectRefused(`${header}.${payload}.`);
  });

  it("refuses HS256 signed with the public key", async () => {
    const genuine = await signWithAppKey(a, {});
    const { kid } = decodeProtectedHeader(genuine);
    const jwks = await (await send(app, "GET", "/v1/.well-known/jwks.json")).json();
    const jwk = (jwks as { keys: JWK[] }).keys.find((key) => key.kid === kid)!;
    const pem = await exportSPKI(
      (await importJWK(jwk, "RS256", { extractable: true })) as CryptoKey,
    );
    const forged = await new SignJWT(decodeJwt(genuine))
      .setProtectedHeader({ alg: "HS256", kid: kid!, typ: "at+jwt" })
      .sign(new TextEncoder().encode(pem));
    await expectRefused(forged);
  });

  it("refuses an unknown kid", async () => {
    await expectRefused(await signWithAppKey(a, {}, { kid: "not-a-key" }));
  });

  it("refuses a tampered payload", async () => {
    const genuine = await signWithAppKey(a, { permissions: ["projects:read"] });
    const [header, , signature] = genuine.split(".");
    const payload = base64url.encode(
      JSON.stringify({ ...decodeJwt(genuine), permissions: ["*:*"] }),
    );
    await expectRefused(`${header}.${payload}.${signature}`);
  });

  it("refuses expired and not-yet-valid tokens", async () => {
    const now = Math.floor(ports.clock.now().getTime() / 1000);
    await expectRefused(await signWithAppKey(a, { iat: now - 7200, exp: now - 3600 }));
    await expectRefused(await signWithAppKey(a, { nbf: now + 3600, exp: now + 7200 }));
  });

  it("refuses a wrong audience or issuer", async () => {
    await expectRefused(await signWithAppKey(a, { aud: "bravo" }));
    await expectRefused(await signWithAppKey(a, { iss: "https://evil.example/v1/apps/alpha" }));
    await expectRefused(await signWithAppKey(a, { iss: issuerFor(issuerBase, "bravo") }));
  });

  it("refuses app A's key vouching for app B", async () => {
    await expectRefused(
      await signWithAppKey(a, {
        app: b.app.id,
        aud: b.app.name,
        iss: issuerFor(issuerBase, b.app.name),
        sub: b.admin.id,
      }),
    );
  });

  it("refuses a token without the at+jwt type", async () => {
    await expectRefused(await signWithAppKey(a, {}, { typ: "JWT" }));
  });

  it("refuses a revoked token", async () => {
    const { accessToken } = await signIn(app, a.app.name, a.reader.email);
    expect((await send(app, "GET", "/v1/users/me", { headers: bearer(accessToken) })).status).toBe(
      200,
    );
    const revoke = await send(app, "POST", `/v1/apps/${a.app.name}/tokens/revoke`, {
      body: { token: accessToken },
    });
    expect(revoke.status).toBe(200);
    await expectRefused(accessToken);
  });

  it("refuses the tokens of a deactivated user, and gives them no new ones", async () => {
    const tenant = await createTenant(app, "charlie");
    expect(
      (await send(app, "GET", "/v1/users/me", { headers: bearer(tenant.reader.accessToken) }))
        .status,
    ).toBe(200);
    const deactivated = await send(
      app,
      "DELETE",
      `/v1/apps/${tenant.app.name}/users/${tenant.reader.id}`,
      { headers: adminHeaders },
    );
    expect(deactivated.status).toBe(200);
    expect((await deactivated.json()) as unknown).toMatchObject({
      data: { status: "deactivated" },
    });
    await expectRefused(tenant.reader.accessToken);
    const login = await send(app, "POST", `/v1/apps/${tenant.app.name}/tokens`, {
      body: {
        grant_type: "password",
        email: tenant.reader.email,
        password: "correct horse battery",
      },
    });
    await expectError(login, 400, "invalid_grant");
    const refresh = await send(app, "POST", `/v1/apps/${tenant.app.name}/tokens/refresh`, {
      body: { refresh_token: tenant.reader.refreshToken },
    });
    await expectError(refresh, 400, "invalid_grant");
  });

  it("refuses the tokens of an archived app, and it issues nothing more", async () => {
    const tenant = await createTenant(app, "delta");
    const archived = await send(app, "DELETE", `/v1/apps/${tenant.app.name}`, {
      headers: adminHeaders,
    });
    expect(archived.status).toBe(200);
    expect((await archived.json()) as unknown).toMatchObject({ data: { status: "archived" } });
    await expectRefused(tenant.admin.accessToken);
    const login = await send(app, "POST", `/v1/apps/${tenant.app.name}/tokens`, {
      body: {
        grant_type: "password",
        email: tenant.admin.email,
        password: "correct horse battery",
      },
    });
    await expectError(login, 400, "invalid_grant");
    const authorize = await send(app, "POST", "/v1/authorize", {
      body: { token: tenant.admin.accessToken, permission: "users:read" },
    });
    expect(await authorize.json()).toMatchObject({ allowed: false, reason: "token_revoked" });
  });

  it("refuses an admin key with anything added", async () => {
    await expectError(
      await send(app, "GET", "/v1/apps", {
        headers: bearer(`${adminHeaders.Authorization.slice(7)}x`),
      }),
      401,
      "unauthorized",
    );
    expect((await send(app, "GET", "/v1/apps", { headers: adminHeaders })).status).toBe(200);
  });
});
