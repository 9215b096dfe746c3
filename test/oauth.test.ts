import { createServer } from "node:net";
import { eq } from "drizzle-orm";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oidc from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../src/adapters/system-clock";
import { oauthClients, sessions } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "./support/identity";
import { type Listening, listen } from "./support/server";

/** A free loopback port, so the app can be told its public URL before it listens. */
async function freePort() {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

let db: DatabasePort;
let server: Listening;
let base: string;
let issuer: string;
let tenant: Tenant;
let app: ReturnType<typeof createTestApp>["app"];
const redirectUri = "https://fleet.example/callback";
let confidential: { client_id: string; client_secret: string };

beforeAll(async () => {
  db = await createMemoryDatabase();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  app = createTestApp({ db, clock: systemClock, env: { PUBLIC_URL: base } }).app;
  server = await listen(app, port);
  tenant = await createTenant(app, "fleet");
  issuer = `${base}/v1/apps/fleet`;
  await send(app, "PATCH", `/v1/apps/fleet/users/${tenant.admin.id}`, {
    body: { display_name: "Ada Admin" },
    headers: adminHeaders,
  });
  const created = await send(app, "POST", "/v1/apps/fleet/oauth/clients", {
    body: {
      name: "Fleet dashboard",
      type: "confidential",
      redirect_uris: [redirectUri],
      scopes: ["openid", "email", "profile", "gps:read"],
    },
    headers: adminHeaders,
  });
  expect(created.status).toBe(201);
  confidential = (await readJson(created)).data;
  expect(confidential.client_secret).toMatch(/^ocs_/);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

const hidden = (page: string) => /name="tx" value="([^"]+)"/.exec(page)?.[1] ?? "";

const postForm = (fields: Record<string, string>, path = "/v1/apps/fleet/oauth/authorize") =>
  fetch(`${base}${path}`, {
    method: "POST",
    body: new URLSearchParams(fields),
    redirect: "manual",
  });

/** A browser's part: the sign-in page, the consent page, the decision; answers the redirect. */
async function signInAndDecide(url: URL, decision: "allow" | "deny" = "allow") {
  const signInPage = await fetch(url, { redirect: "manual" });
  expect(signInPage.status).toBe(200);
  const html = await signInPage.text();
  expect(html).toContain("Sign in to fleet");
  expect(signInPage.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  const wrong = await postForm({ tx: hidden(html), email: tenant.admin.email, password: "nope" });
  expect(wrong.status).toBe(401);
  const signedIn = await postForm({
    tx: hidden(html),
    email: tenant.admin.email,
    password: PASSWORD,
  });
  if (signedIn.status === 302) return signedIn.headers.get("location") ?? "";
  expect(signedIn.status).toBe(200);
  const consent = await signedIn.text();
  expect(consent).toMatch(/<h1>Allow [^<]+\?<\/h1>/);
  const decided = await postForm({ tx: hidden(consent), decision });
  expect(decided.status).toBe(302);
  return decided.headers.get("location") ?? "";
}

/** The code exchange as a raw form POST, to read the error answer itself. */
const exchange = (location: URL, verifier: string) =>
  fetch(`${issuer}/tokens`, {
    method: "POST",
    headers: {
      Authorization: `Basic ${btoa(`${confidential.client_id}:${confidential.client_secret}`)}`,
    },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: location.searchParams.get("code") ?? "",
      redirect_uri: redirectUri,
      code_verifier: verifier,
    }),
  });

async function configuration() {
  return oidc.discovery(
    new URL(issuer),
    confidential.client_id,
    confidential.client_secret,
    undefined,
    // Non-repudiation: the ID token's signature is checked against Heimdall's JWKS too.
    { execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks] },
  );
}

async function startFlow(config: oidc.Configuration, scope: string) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  return { url, verifier, state, nonce };
}

describe("OAuth 2.1 authorization code + PKCE, OpenID Connect", () => {
  it("completes the flow with openid-client: tokens that verify through the JWKS, an ID token and userinfo", async () => {
    const config = await configuration();
    const flow = await startFlow(config, "openid email profile gps:read");
    const location = await signInAndDecide(flow.url);
    expect(new URL(location).searchParams.get("iss")).toBe(issuer);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(location), {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    expect(idClaims).toMatchObject({
      iss: issuer,
      sub: tenant.admin.id,
      aud: confidential.client_id,
      nonce: flow.nonce,
      email: tenant.admin.email,
      name: "Ada Admin",
    });
    expect(typeof idClaims?.auth_time).toBe("number");

    const { payload } = await jwtVerify(
      tokens.access_token,
      createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)),
      { issuer, audience: "fleet" },
    );
    // The admin user holds *:*; the client got only what it asked and was allowed.
    expect(payload).toMatchObject({
      sub: tenant.admin.id,
      client_id: confidential.client_id,
      permissions: ["gps:read"],
      scope: "openid email profile gps:read",
    });
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tenant.admin.id);
    expect(userinfo).toMatchObject({
      sub: tenant.admin.id,
      email: tenant.admin.email,
      name: "Ada Admin",
    });

    expect(
      (await send(app, "GET", "/v1/gps/current", { headers: bearer(tokens.access_token) })).status,
    ).toBe(200);
    await expectError(
      await send(app, "GET", "/v1/users", { headers: bearer(tokens.access_token) }),
      403,
      "forbidden",
    );
    // Refreshing keeps the grant's limits.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token ?? "");
    const again = await jwtVerify(
      refreshed.access_token,
      createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`)),
      { issuer, audience: "fleet" },
    );
    expect(again.payload.permissions).toEqual(["gps:read"]);

    // Allowed once, the consent page is skipped next time.
    const second = await startFlow(config, "openid gps:read");
    const page = await (await fetch(second.url)).text();
    const direct = await postForm({
      tx: hidden(page),
      email: tenant.admin.email,
      password: PASSWORD,
    });
    expect(direct.status).toBe(302);
    expect(new URL(direct.headers.get("location") ?? "").searchParams.get("code")).toMatch(/^oac_/);
  });

  it("links the sign-in page to the account pages, which return to this authorization request", async () => {
    const flow = await startFlow(await configuration(), "openid");
    const back = encodeURIComponent(`${flow.url.pathname}${flow.url.search}`);
    const linksOf = async (res: Response) =>
      Object.fromEntries(
        [...(await res.text()).matchAll(/<a href="([^"]+)">([^<]+)<\/a>/g)].map((m) => [
          m[2],
          m[1]?.replaceAll("&amp;", "&"),
        ]),
      );
    const signUp = (policy: string) =>
      send(app, "PATCH", "/v1/apps/fleet/settings", {
        body: { signup: policy },
        headers: adminHeaders,
      });

    const closed = await fetch(flow.url);
    expect(closed.status).toBe(200);
    expect(await linksOf(closed)).toEqual({
      "Forgot password?": `/v1/apps/fleet/pages/forgot-password?continue=${back}`,
    });
    expect((await signUp("open")).status).toBe(200);
    try {
      const open = await fetch(flow.url);
      const html = await open.clone().text();
      expect(await linksOf(open)).toEqual({
        "Forgot password?": `/v1/apps/fleet/pages/forgot-password?continue=${back}`,
        "Create account": `/v1/apps/fleet/pages/signup?continue=${back}`,
      });
      // After a wrong password the page keeps the way back; a value from elsewhere is dropped.
      const form = /name="continue" value="([^"]+)"/.exec(html)?.[1]?.replaceAll("&amp;", "&");
      expect(form).toBe(`${flow.url.pathname}${flow.url.search}`);
      const wrong = await postForm({
        tx: hidden(html),
        continue: form ?? "",
        email: tenant.admin.email,
        password: "nope",
      });
      expect(wrong.status).toBe(401);
      expect((await linksOf(wrong))["Create account"]).toBe(
        `/v1/apps/fleet/pages/signup?continue=${back}`,
      );
      const foreign = await postForm({
        tx: hidden(html),
        continue: "https://evil.example/v1/apps/fleet/oauth/authorize?x=1",
        email: tenant.admin.email,
        password: "nope",
      });
      expect(foreign.status).toBe(401);
      expect(await linksOf(foreign)).toEqual({
        "Forgot password?": "/v1/apps/fleet/pages/forgot-password",
        "Create account": "/v1/apps/fleet/pages/signup",
      });
    } finally {
      await signUp("closed");
    }
  });

  it("refuses a reused code (and ends what it opened) and a mismatched verifier", async () => {
    const config = await configuration();
    const flow = await startFlow(config, "openid gps:read");
    const location = new URL(await signInAndDecide(flow.url));
    const tokens = await oidc.authorizationCodeGrant(config, location, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
    // Token endpoint errors come in Heimdall's envelope with RFC 6749 codes (docs/oauth.md).
    await expectError(await exchange(location, flow.verifier), 400, "invalid_grant");
    // The replay ended the session the first exchange opened.
    await expectError(
      await send(app, "GET", "/v1/gps/current", { headers: bearer(tokens.access_token) }),
      401,
      "unauthorized",
    );

    const other = await startFlow(config, "openid gps:read");
    const otherLocation = new URL(await signInAndDecide(other.url));
    await expectError(
      await exchange(otherLocation, oidc.randomPKCECodeVerifier()),
      400,
      "invalid_grant",
    );
    // The right verifier cannot rescue a code already presented once.
    await expectError(await exchange(otherLocation, other.verifier), 400, "invalid_grant");
    // A wrong state is the client's to catch; openid-client does.
    const third = await startFlow(config, "openid");
    const thirdLocation = new URL(await signInAndDecide(third.url));
    await expect(
      oidc.authorizationCodeGrant(config, thirdLocation, {
        pkceCodeVerifier: third.verifier,
        expectedState: oidc.randomState(),
      }),
    ).rejects.toMatchObject({
      code: "OAUTH_INVALID_RESPONSE",
      cause: { message: expect.stringContaining("state") },
    });
  });

  it("never redirects to an unregistered URI, and reports other errors to the client", async () => {
    const query = (params: Record<string, string>) =>
      fetch(`${issuer}/oauth/authorize?${new URLSearchParams(params)}`, { redirect: "manual" });
    const good = {
      response_type: "code",
      client_id: confidential.client_id,
      redirect_uri: redirectUri,
      scope: "openid",
      state: "s1",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    };
    const elsewhere = await query({ ...good, redirect_uri: "https://evil.example/callback" });
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.text()).toContain("not registered");
    const prefix = await query({ ...good, redirect_uri: `${redirectUri}/../x` });
    expect(prefix.status).toBe(400);
    const unknown = await query({ ...good, client_id: "ocl_nobody" });
    expect(unknown.status).toBe(400);

    const noPkce = await query({ ...good, code_challenge_method: "plain" });
    expect(noPkce.status).toBe(302);
    const refused = new URL(noPkce.headers.get("location") ?? "");
    expect(`${refused.origin}${refused.pathname}`).toBe(redirectUri);
    expect(refused.searchParams.get("error")).toBe("invalid_request");
    expect(refused.searchParams.get("state")).toBe("s1");
    const badScope = await query({ ...good, scope: "openid users:write" });
    expect(new URL(badScope.headers.get("location") ?? "").searchParams.get("error")).toBe(
      "invalid_scope",
    );
    const tampered = await postForm({
      tx: "v1.AAAA.BBBB",
      email: tenant.admin.email,
      password: PASSWORD,
    });
    expect(tampered.status).toBe(400);
  });

  it("lets the user deny, list what they allowed, and withdraw it", async () => {
    const publicClient = (
      await readJson(
        await send(app, "POST", "/v1/oauth/clients", {
          body: {
            name: "Phone app",
            type: "public",
            redirect_uris: [redirectUri],
            scopes: ["openid", "gps:read"],
          },
          headers: bearer(tenant.admin.accessToken),
        }),
      )
    ).data;
    expect(publicClient.client_secret).toBeUndefined();
    const config = await oidc.discovery(
      new URL(issuer),
      publicClient.client_id,
      undefined,
      oidc.None(),
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    const denied = await startFlow(config, "openid gps:read");
    const deniedAt = new URL(await signInAndDecide(denied.url, "deny"));
    expect(deniedAt.searchParams.get("error")).toBe("access_denied");
    expect(deniedAt.searchParams.get("state")).toBe(denied.state);

    const flow = await startFlow(config, "openid gps:read");
    const tokens = await oidc.authorizationCodeGrant(
      config,
      new URL(await signInAndDecide(flow.url)),
      {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
      },
    );
    const mine = bearer(tenant.admin.accessToken);
    const grants = await readJson(await send(app, "GET", "/v1/users/me/grants", { headers: mine }));
    const grant = grants.data.find(
      (g: { client_id: string }) => g.client_id === publicClient.client_id,
    );
    expect(grant).toMatchObject({ client_name: "Phone app", scopes: ["openid", "gps:read"] });
    expect(
      (await send(app, "DELETE", `/v1/users/me/grants/${grant.id}`, { headers: mine })).status,
    ).toBe(204);
    await expectError(
      await send(app, "GET", "/v1/gps/current", { headers: bearer(tokens.access_token) }),
      401,
      "unauthorized",
    );
    const refresh = await send(app, "POST", "/v1/apps/fleet/tokens", {
      body: { grant_type: "refresh_token", refresh_token: tokens.refresh_token },
    });
    await expectError(refresh, 400, "invalid_grant");
  });

  it("manages clients: secrets shown once, rotated with grace, scopes checked", async () => {
    const rotated = await send(
      app,
      "POST",
      `/v1/apps/fleet/oauth/clients/${confidential.client_id}/rotate-secret`,
      {
        headers: adminHeaders,
      },
    );
    const { client_secret } = (await readJson(rotated)).data;
    expect(client_secret).not.toBe(confidential.client_secret);
    const listed = await readJson(
      await send(app, "GET", "/v1/apps/fleet/oauth/clients", { headers: adminHeaders }),
    );
    expect(JSON.stringify(listed)).not.toMatch(/ocs_|secret_hash/);
    await expectError(
      await send(app, "POST", "/v1/apps/fleet/oauth/clients", {
        body: { name: "x", type: "public", redirect_uris: [redirectUri], scopes: ["everything"] },
        headers: adminHeaders,
      }),
      400,
      "validation_error",
    );
    await expectError(
      await send(app, "GET", "/v1/oauth/clients", { headers: bearer(tenant.reader.accessToken) }),
      403,
      "forbidden",
    );
  });
  it("ends a deleted client's sessions: its refresh and access tokens stop working (invalid_grant)", async () => {
    const created = await readJson(
      await send(app, "POST", "/v1/apps/fleet/oauth/clients", {
        body: {
          name: "Short-lived",
          type: "public",
          redirect_uris: [redirectUri],
          scopes: ["openid", "gps:read"],
        },
        headers: adminHeaders,
      }),
    );
    const clientId = created.data.client_id;
    const config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const flow = await startFlow(config, "openid gps:read");
    const tokens = await oidc.authorizationCodeGrant(
      config,
      new URL(await signInAndDecide(flow.url)),
      { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce },
    );
    const sessionsOf = async () =>
      (await db.session().db.select().from(sessions)).filter((row) => row.client_id === clientId);
    expect((await sessionsOf()).map((row) => row.revoked_at)).toEqual([null]);

    const deleted = await send(app, "DELETE", `/v1/apps/fleet/oauth/clients/${clientId}`, {
      headers: adminHeaders,
    });
    expect(deleted.status).toBe(204);
    expect((await sessionsOf()).map((row) => row.revoked_reason)).toEqual(["client_deleted"]);
    await expectError(
      await send(app, "POST", "/v1/apps/fleet/tokens", {
        body: { grant_type: "refresh_token", refresh_token: tokens.refresh_token },
      }),
      400,
      "invalid_grant",
    );
    await expectError(
      await send(app, "GET", "/v1/gps/current", { headers: bearer(tokens.access_token) }),
      401,
      "unauthorized",
    );
  });

  it("refuses a refresh of a session whose client is gone, even one its deletion missed", async () => {
    const created = await readJson(
      await send(app, "POST", "/v1/apps/fleet/oauth/clients", {
        body: { name: "Raced", type: "public", redirect_uris: [redirectUri], scopes: ["openid"] },
        headers: adminHeaders,
      }),
    );
    const clientId = created.data.client_id;
    const config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    const flow = await startFlow(config, "openid");
    const tokens = await oidc.authorizationCodeGrant(
      config,
      new URL(await signInAndDecide(flow.url)),
      { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce },
    );
    // As if the session had been opened while the deletion ran: the client row goes, it stays.
    await db.session().db.delete(oauthClients).where(eq(oauthClients.id, clientId));
    await expectError(
      await send(app, "POST", "/v1/apps/fleet/tokens", {
        body: { grant_type: "refresh_token", refresh_token: tokens.refresh_token },
      }),
      400,
      "invalid_grant",
    );
  });

  it("registers only https, loopback http and private-use redirect URIs", async () => {
    const register = (uri: string) =>
      send(app, "POST", "/v1/apps/fleet/oauth/clients", {
        body: { name: "Native", type: "public", redirect_uris: [uri], scopes: ["openid"] },
        headers: adminHeaders,
      });
    for (const uri of [
      "javascript:alert(1)",
      "JavaScript://x/%0aalert(1)",
      "data:text/html,<script>alert(1)</script>",
      "file:///etc/passwd",
      "http://fleet.example/callback",
      "http://127.0.0.2/callback",
      "vbscript:msgbox(1)",
      "myapp:/callback",
      "https://fleet.example/callback#frag",
    ]) {
      const body = await expectError(await register(uri), 400, "validation_error");
      expect(body.error.details?.[0]?.field, uri).toMatch(/^json\.redirect_uris/);
    }
    for (const uri of [
      "https://fleet.example/cb",
      "http://127.0.0.1:8400/cb",
      "http://[::1]:8400/cb",
      "http://localhost/cb",
      "com.example.fleet:/oauth2redirect",
    ]) {
      expect((await register(uri)).status, uri).toBe(201);
    }
    const patched = await send(
      app,
      "PATCH",
      `/v1/apps/fleet/oauth/clients/${confidential.client_id}`,
      {
        body: { redirect_uris: [redirectUri, "javascript:alert(1)"] },
        headers: adminHeaders,
      },
    );
    await expectError(patched, 400, "validation_error");
  });

  it("never redirects to a registered URI that is unsafe (stored before the rule) or no longer registered", async () => {
    const created = await readJson(
      await send(app, "POST", "/v1/apps/fleet/oauth/clients", {
        body: { name: "Legacy", type: "public", redirect_uris: [redirectUri], scopes: ["openid"] },
        headers: adminHeaders,
      }),
    );
    const clientId = created.data.client_id;
    const unsafe = "javascript:alert(document.domain)//";
    await db
      .session()
      .db.update(oauthClients)
      .set({ redirect_uris: [redirectUri, unsafe] })
      .where(eq(oauthClients.id, clientId));
    const query = (redirect: string, extra: Record<string, string> = {}) =>
      fetch(
        `${issuer}/oauth/authorize?${new URLSearchParams({
          response_type: "code",
          client_id: clientId,
          redirect_uri: redirect,
          scope: "openid",
          code_challenge_method: "S256",
          code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
          ...extra,
        })}`,
        { redirect: "manual" },
      );
    // An error that would be redirected (bad response_type) is shown on the page instead.
    const refused = await query(unsafe, { response_type: "token" });
    expect(refused.status).toBe(400);
    expect(refused.headers.get("location")).toBeNull();
    expect((await query(unsafe)).status).toBe(400);

    // A sign-in started while the URI was registered: removed meanwhile, nothing goes there.
    const started = await query(redirectUri);
    expect(started.status).toBe(200);
    const tx = hidden(await started.text());
    await db
      .session()
      .db.update(oauthClients)
      .set({ redirect_uris: ["https://fleet.example/other"] })
      .where(eq(oauthClients.id, clientId));
    const signedIn = await postForm({ tx, email: tenant.admin.email, password: PASSWORD });
    expect(signedIn.status).toBe(400);
    expect(signedIn.headers.get("location")).toBeNull();
    expect(await signedIn.text()).toContain("not registered");
  });
});
