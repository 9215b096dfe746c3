import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../src/adapters/system-clock";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { listen } from "./support/server";

/**
 * The identity core end to end, over a real socket: admin creates app, role and user; the user
 * signs in; a third party verifies the token with the served JWKS; authorize, refresh rotation,
 * reuse detection and revocation behave as documented.
 */
describe("identity end to end", () => {
  let db: DatabasePort;
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    db = await createMemoryDatabase();
    // PUBLIC_URL unset: issuers come from the request's origin, the real socket's address.
    const { app } = createTestApp({ db, env: { PUBLIC_URL: "" }, clock: systemClock });
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
    await db.close();
  });

  const call = async (
    path: string,
    init: { method?: string; body?: unknown; token?: string } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (init.body !== undefined) headers["Content-Type"] = "application/json";
    if (init.token) headers.Authorization = `Bearer ${init.token}`;
    return fetch(`${server.url}${path}`, {
      method: init.method ?? (init.body === undefined ? "GET" : "POST"),
      headers:
        init.token === undefined && !path.includes("/tokens")
          ? { ...headers, ...adminHeaders }
          : headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });
  };
  const authorize = async (token: string, permission: string) => {
    const res = await call("/v1/authorize", { body: { token, permission }, token: "" });
    expect(res.status).toBe(200);
    return readJson(res);
  };

  it("issues tokens third parties verify offline, and revokes them", async () => {
    const created = await call("/v1/apps", {
      body: { name: "acme-corp", display_name: "Acme Corporation", metadata: { plan: "growth" } },
    });
    expect(created.status).toBe(201);
    const app = (await readJson(created)).data;
    expect(Object.keys(app).sort()).toEqual(
      ["created_at", "display_name", "id", "metadata", "name", "status", "updated_at"].sort(),
    );
    expect(app).toMatchObject({
      name: "acme-corp",
      status: "active",
      metadata: { plan: "growth" },
    });
    expect(app.id).toMatch(/^app_[0-9A-Z]{26}$/);

    const role = await call("/v1/apps/acme-corp/roles", {
      body: {
        name: "editor",
        display_name: "Editor",
        permissions: ["projects:read", "projects:write"],
      },
    });
    expect(role.status).toBe(201);
    expect((await readJson(role)).data).toMatchObject({
      app_id: app.id,
      name: "editor",
      permissions: ["projects:read", "projects:write"],
    });

    const user = await call("/v1/apps/acme-corp/users", {
      body: {
        email: "Jane@Acme.co",
        display_name: "Jane Chen",
        password: "correct horse battery",
        role: "editor",
        metadata: { department: "engineering" },
      },
    });
    expect(user.status).toBe(201);
    const jane = (await readJson(user)).data;
    expect(jane).toMatchObject({ app_id: app.id, roles: ["editor"], status: "active" });
    expect(jane).not.toHaveProperty("password_hash");

    // Password grant, form-encoded as RFC 6749 has it; the email matches case-insensitively.
    const login = await fetch(`${server.url}/v1/apps/acme-corp/tokens`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "password",
        email: "jane@ACME.co",
        password: "correct horse battery",
      }),
    });
    expect(login.status, await login.clone().text()).toBe(200);
    expect(login.headers.get("cache-control")).toBe("no-store");
    const tokens = await readJson(login);
    expect(tokens).toEqual({
      access_token: expect.any(String),
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: expect.stringMatching(/^rt_/),
    });

    // A third party: discovery, then the JWKS, with nothing but jose.
    const discovery = await readJson(
      await fetch(`${server.url}/v1/apps/acme-corp/.well-known/openid-configuration`),
    );
    expect(discovery.issuer).toBe(`${server.url}/v1/apps/acme-corp`);
    const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: discovery.issuer,
      audience: "acme-corp",
    });
    expect(protectedHeader).toMatchObject({ alg: "RS256", typ: "at+jwt", kid: expect.any(String) });
    expect(payload).toMatchObject({
      sub: jane.id,
      app: app.id,
      roles: ["editor"],
      permissions: ["projects:read", "projects:write"],
    });
    expect(payload.exp! - payload.iat!).toBe(3600);
    const globalJwks = await readJson(await fetch(`${server.url}/v1/.well-known/jwks.json`));
    expect(globalJwks.keys.map((k: { kid: string }) => k.kid)).toContain(protectedHeader.kid);

    expect(await authorize(tokens.access_token, "projects:read")).toEqual({
      allowed: true,
      subject: jane.id,
      app: app.id,
      permissions: ["projects:read", "projects:write"],
    });
    expect(await authorize(tokens.access_token, "billing:read")).toMatchObject({
      allowed: false,
      reason: "missing_permission",
    });

    // Refresh rotates.
    const refreshed = await call("/v1/apps/acme-corp/tokens/refresh", {
      body: { refresh_token: tokens.refresh_token },
    });
    expect(refreshed.status).toBe(200);
    const rotated = await readJson(refreshed);
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    expect((await authorize(rotated.access_token, "projects:write")).allowed).toBe(true);

    // Reusing the old refresh token fails and kills the family, new tokens included.
    const reuse = await call("/v1/apps/acme-corp/tokens/refresh", {
      body: { refresh_token: tokens.refresh_token },
    });
    await expectError(reuse, 400, "invalid_grant");
    const afterReuse = await call("/v1/apps/acme-corp/tokens/refresh", {
      body: { refresh_token: rotated.refresh_token },
    });
    await expectError(afterReuse, 400, "invalid_grant");
    expect(await authorize(rotated.access_token, "projects:read")).toMatchObject({
      allowed: false,
      reason: "token_revoked",
    });

    // A new sign-in, then RFC 7009 revocation of its access token.
    const second = await readJson(
      await call("/v1/apps/acme-corp/tokens", {
        body: { grant_type: "password", email: "jane@acme.co", password: "correct horse battery" },
      }),
    );
    expect((await authorize(second.access_token, "projects:read")).allowed).toBe(true);
    const revoked = await call("/v1/apps/acme-corp/tokens/revoke", {
      body: { token: second.access_token },
    });
    expect(revoked.status).toBe(200);
    expect(await authorize(second.access_token, "projects:read")).toMatchObject({
      allowed: false,
      reason: "token_revoked",
    });
    // Revoking the refresh token ends the session: it cannot be refreshed any more.
    await call("/v1/apps/acme-corp/tokens/revoke", { body: { token: second.refresh_token } });
    await expectError(
      await call("/v1/apps/acme-corp/tokens/refresh", {
        body: { refresh_token: second.refresh_token },
      }),
      400,
      "invalid_grant",
    );

    // All of it is in the audit log.
    const audit = await readJson(await call("/v1/apps/acme-corp/audit-logs?limit=100"));
    const actions = audit.data.map((event: { action: string }) => event.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        "app.created",
        "role.created",
        "user.created",
        "auth.login.succeeded",
        "token.refreshed",
        "token.reuse_detected",
        "token.revoked",
      ]),
    );
    const reuseEvent = await readJson(
      await call("/v1/apps/acme-corp/audit-logs?action=token.reuse_detected"),
    );
    expect(reuseEvent.pagination.total).toBe(1);
    expect(reuseEvent.data[0]).toMatchObject({ app_id: app.id, target_type: "session" });
    const revocations = await readJson(
      await call("/v1/apps/acme-corp/audit-logs?action=token.revoked"),
    );
    expect(
      revocations.data
        .map((e: { metadata: { token_type: string } }) => e.metadata.token_type)
        .sort(),
    ).toEqual(["access_token", "refresh_token"]);
    expect(decodeProtectedHeader(tokens.access_token).kid).toBe(protectedHeader.kid);
  });
});
