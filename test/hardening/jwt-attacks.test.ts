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
import type { App } from "../../src/app";
import type { DatabasePort, Ports } from "../../src/ports";
import { issuerFor } from "../../src/services/access-tokens";
import type { Services } from "../../src/services/context";
import { adminHeaders, createTestApp } from "../support/app";
import { databaseBackends } from "../support/backends";
import { expectError } from "../support/http";
import { bearer, createTenant, PASSWORD, send, signIn, type Tenant } from "../support/identity";

/**
 * Forged, stale and revoked credentials against every protected operation of the served OpenAPI
 * document (one with a `security` requirement, or that answers 401 without credentials): each
 * must be refused with 401 in the error shape, while a genuine token gets past authentication on
 * every one of them (so a refusal is not a broken route).
 */

const backends = databaseBackends("JWT attack walk");

const methods = ["get", "post", "put", "patch", "delete"] as const;
const issuerBase = "http://heimdall.test";

interface Operation {
  method: string;
  path: string;
  secured: boolean;
  /** Tracker ingest, which takes a device secret too, and a point in its query or body. */
  tracker: boolean;
}

/** An attack: the request headers it sends, built once the tenants exist. */
interface Attack {
  name: string;
  headers(): Promise<Record<string, string>>;
}

describe.each(backends)("JWT attacks on $name", (backend) => {
  let dispose: () => Promise<void>;
  let db: DatabasePort;
  let app: App;
  let ports: Ports;
  let services: Services;
  let a: Tenant;
  let b: Tenant;
  /** A tenant whose reader is deactivated, and one whose app is archived. */
  let deactivated: Tenant;
  let archived: Tenant;
  let cases = 0;
  let operations: Operation[];
  /** Operations a request without credentials gets 401 from, or marked with `security`. */
  let protectedOps: Operation[];

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    ({ app, ports, services } = createTestApp({ db }));
    a = await createTenant(app, "alpha");
    b = await createTenant(app, "bravo");
    deactivated = await createTenant(app, "charlie");
    archived = await createTenant(app, "delta");
    for (const tenant of [deactivated, archived]) {
      const me = await send(app, "GET", "/v1/users/me", {
        headers: bearer(tenant.reader.accessToken),
      });
      expect(me.status).toBe(200);
    }
    const ended = await send(
      app,
      "DELETE",
      `/v1/apps/${deactivated.app.name}/users/${deactivated.reader.id}`,
      { headers: adminHeaders },
    );
    expect(await ended.json()).toMatchObject({ data: { status: "deactivated" } });
    const gone = await send(app, "DELETE", `/v1/apps/${archived.app.name}`, {
      headers: adminHeaders,
    });
    expect(await gone.json()).toMatchObject({ data: { status: "archived" } });
    const doc = (await (await send(app, "GET", "/v1/openapi.json")).json()) as {
      paths: Record<
        string,
        Record<string, { security?: Array<Record<string, string[]>> } | undefined>
      >;
    };
    operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      methods.flatMap((method) => {
        const op = item[method];
        if (!op) return [];
        const security = op.security ?? [];
        const tracker = security.some((requirement) => "deviceKey" in requirement);
        return [{ method, path, secured: security.length > 0, tracker }];
      }),
    );
    protectedOps = [];
    for (const op of operations) {
      const res = await call(op, {});
      if (op.secured || res.status === 401) protectedOps.push(op);
    }
  });
  afterAll(async () => {
    console.info(
      `[jwt:${backend.name}] ${cases} attack cases walked (${attacks.length} attacks × ${protectedOps.length} protected operations)`,
    );
    await dispose();
  });

  /**
   * `op` on A's app and ids that exist nowhere (authentication comes before any lookup; a
   * genuine token then gets a 404 or 400, and nothing is changed), without a body.
   */
  const call = (op: Operation, headers: Record<string, string>) =>
    send(
      app,
      op.method.toUpperCase(),
      op.path.replace(/\{(\w+)\}/g, (_, name: string) =>
        name === "app_name" ? a.app.name : "nonexistent",
      ),
      { headers },
    );

  /** The platform admin's routes, where an app's token is authenticated and then forbidden. */
  const platformOnly = (op: Operation) => /^\/v1\/(apps|admin)(\/|$)/.test(op.path);

  /** Signs claims with a tenant's real private key, as only Heimdall could. */
  async function signWithAppKey(
    tenant: Tenant,
    claims: Record<string, unknown>,
    header: Record<string, unknown> = {},
  ) {
    const session = db.session();
    const key = await services.keys
      .signingKey(session.db, tenant.app.id, "RS256")
      .finally(() => session.release());
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

  const asBearer = async (token: Promise<string> | string) => bearer(await token);
  const now = () => Math.floor(ports.clock.now().getTime() / 1000);

  const attacks: Attack[] = [
    { name: "a garbage bearer token", headers: async () => bearer("garbage") },
    {
      name: "HTTP Basic instead of a bearer token",
      headers: async () => ({ Authorization: "Basic Zm9vOmJhcg==" }),
    },
    {
      name: "alg: none",
      headers: async () => {
        const genuine = await signWithAppKey(a, {});
        const [, payload] = genuine.split(".");
        const header = base64url.encode(
          JSON.stringify({ alg: "none", typ: "at+jwt", kid: decodeProtectedHeader(genuine).kid }),
        );
        return bearer(`${header}.${payload}.`);
      },
    },
    {
      name: "HS256 signed with the public key as the secret",
      headers: async () => {
        const genuine = await signWithAppKey(a, {});
        const { kid } = decodeProtectedHeader(genuine);
        const jwks = (await (await send(app, "GET", "/v1/.well-known/jwks.json")).json()) as {
          keys: JWK[];
        };
        const jwk = jwks.keys.find((key) => key.kid === kid);
        expect(jwk).toBeDefined();
        const pem = await exportSPKI(
          (await importJWK(jwk as JWK, "RS256", { extractable: true })) as CryptoKey,
        );
        return asBearer(
          new SignJWT(decodeJwt(genuine))
            .setProtectedHeader({ alg: "HS256", kid: kid ?? "", typ: "at+jwt" })
            .sign(new TextEncoder().encode(pem)),
        );
      },
    },
    {
      name: "an unknown kid",
      headers: () => asBearer(signWithAppKey(a, {}, { kid: "not-a-key" })),
    },
    {
      name: "a tampered payload",
      headers: async () => {
        const genuine = await signWithAppKey(a, { permissions: ["projects:read"] });
        const [header, , signature] = genuine.split(".");
        const payload = base64url.encode(
          JSON.stringify({ ...decodeJwt(genuine), permissions: ["*:*"] }),
        );
        return bearer(`${header}.${payload}.${signature}`);
      },
    },
    {
      name: "an expired token",
      headers: () => asBearer(signWithAppKey(a, { iat: now() - 7200, exp: now() - 3600 })),
    },
    {
      name: "a not-yet-valid token",
      headers: () => asBearer(signWithAppKey(a, { nbf: now() + 3600, exp: now() + 7200 })),
    },
    { name: "another audience", headers: () => asBearer(signWithAppKey(a, { aud: b.app.name })) },
    {
      name: "a foreign issuer",
      headers: () => asBearer(signWithAppKey(a, { iss: "https://evil.example/v1/apps/alpha" })),
    },
    {
      name: "app B's issuer",
      headers: () => asBearer(signWithAppKey(a, { iss: issuerFor(issuerBase, b.app.name) })),
    },
    {
      name: "app A's key vouching for app B",
      headers: () =>
        asBearer(
          signWithAppKey(a, {
            app: b.app.id,
            aud: b.app.name,
            iss: issuerFor(issuerBase, b.app.name),
            sub: b.admin.id,
          }),
        ),
    },
    {
      name: "app B's key vouching for app A",
      headers: () =>
        asBearer(
          signWithAppKey(b, {
            app: a.app.id,
            aud: a.app.name,
            iss: issuerFor(issuerBase, a.app.name),
            sub: a.admin.id,
          }),
        ),
    },
    {
      name: "a token without the at+jwt type",
      headers: () => asBearer(signWithAppKey(a, {}, { typ: "JWT" })),
    },
    {
      name: "a revoked token",
      headers: async () => {
        const { accessToken } = await signIn(app, a.app.name, a.reader.email);
        expect(
          (await send(app, "GET", "/v1/users/me", { headers: bearer(accessToken) })).status,
        ).toBe(200);
        const revoke = await send(app, "POST", `/v1/apps/${a.app.name}/tokens/revoke`, {
          body: { token: accessToken },
        });
        expect(revoke.status).toBe(200);
        return bearer(accessToken);
      },
    },
    {
      name: "the token of a deactivated user",
      headers: async () => bearer(deactivated.reader.accessToken),
    },
    {
      name: "the token of an archived app",
      headers: async () => bearer(archived.admin.accessToken),
    },
    {
      name: "the platform admin key with a character added",
      headers: async () => bearer(`${adminHeaders.Authorization.slice(7)}x`),
    },
  ];

  it("answers 401 in the error shape to every operation with a security requirement called without credentials", async () => {
    const secured = operations.filter((op) => op.secured);
    expect(secured.length).toBeGreaterThanOrEqual(100);
    const failures: string[] = [];
    for (const op of secured) {
      const res = await call(op, {});
      await expectError(res, 401, "unauthorized").catch((error: Error) =>
        failures.push(`${op.method.toUpperCase()} ${op.path}: ${error.message.slice(0, 300)}`),
      );
    }
    expect(failures).toEqual([]);
    const unmarked = protectedOps.filter((op) => !op.secured);
    console.info(
      `[jwt:${backend.name}] ${protectedOps.length} protected operations of ${operations.length}: ${secured.length} with a security requirement, ${unmarked.length} more that answer 401 without credentials (${unmarked.map((op) => `${op.method.toUpperCase()} ${op.path}`).join(", ")})`,
    );
  });

  it("lets a genuine token past authentication on every protected operation, without a 5xx (the control)", async () => {
    const refused: string[] = [];
    let reads = 0;
    for (const op of protectedOps) {
      const res = await call(op, bearer(await signWithAppKey(a, {})));
      // The app's own reads without an id answer the token's `*:*` in full.
      const read =
        op.secured &&
        op.method === "get" &&
        !op.path.includes("{") &&
        !platformOnly(op) &&
        !op.tracker;
      reads += read ? 1 : 0;
      if (res.status === 401 || res.status >= 500 || (read && res.status !== 200))
        refused.push(`${op.method.toUpperCase()} ${op.path}: ${res.status} ${await res.text()}`);
    }
    expect(refused).toEqual([]);
    expect(reads).toBeGreaterThanOrEqual(15);
    expect((await send(app, "GET", "/v1/apps", { headers: adminHeaders })).status).toBe(200);
  });

  it.each(attacks)("refuses $name on every protected operation", async (attack) => {
    const headers = await attack.headers();
    const failures: string[] = [];
    for (const op of protectedOps) {
      const res = await call(op, headers);
      const label = `${op.method.toUpperCase()} ${op.path}`;
      if (!/^Bearer/.test(res.headers.get("www-authenticate") ?? ""))
        failures.push(`${label}: no Bearer challenge`);
      await expectError(res, 401, "unauthorized").catch((error: Error) =>
        failures.push(`${label}: ${error.message.slice(0, 300)}`),
      );
      cases++;
    }
    expect(failures).toEqual([]);
  });

  it("issues nothing more to a deactivated user or an archived app", async () => {
    for (const [tenant, user] of [
      [deactivated, deactivated.reader],
      [archived, archived.admin],
    ] as const) {
      const tokens = `/v1/apps/${tenant.app.name}/tokens`;
      const login = await send(app, "POST", tokens, {
        body: { grant_type: "password", email: user.email, password: PASSWORD },
      });
      await expectError(login, 400, "invalid_grant");
      const refresh = await send(app, "POST", `${tokens}/refresh`, {
        body: { refresh_token: user.refreshToken },
      });
      await expectError(refresh, 400, "invalid_grant");
    }
    const authorize = await send(app, "POST", "/v1/authorize", {
      body: { token: archived.admin.accessToken, permission: "users:read" },
    });
    expect(await authorize.json()).toMatchObject({ allowed: false, reason: "token_revoked" });
  });
});
