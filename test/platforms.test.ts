import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { and, eq } from "drizzle-orm";
import { exportJWK, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditLogs, platformLogins, platforms, userIdentities, users } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import type { Services } from "../src/services/context";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  type LogEvent,
} from "./support/app";
import { cookieJar } from "./support/cookie-jar";
import { expectError, readJson } from "./support/http";
import {
  bearer,
  createTenant,
  overHttp,
  PASSWORD,
  type Requester,
  send,
  signIn,
  type Tenant,
} from "./support/identity";
import { type OidcProvider, OidcProviderClass } from "./support/oidc-provider";
import { type Listening, listen } from "./support/server";

interface Account {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

/** The provider's accounts: `sub` → claims. */
const accounts: Record<string, Account> = {
  alice: { email: "alice@example.com", email_verified: true, name: "Alice Liddell" },
  bob: { email: "bob@acme.test", email_verified: true, name: "Bob" },
  mallory: { email: "victim@acme.test", email_verified: false, name: "Not The Victim" },
  nomail: { name: "No Mail" },
  carol: { email: "carol@example.com", email_verified: true, name: "Carol" },
  dave: { email: "dave@example.com", email_verified: true, name: "Dave" },
  eve: { email: "eve@example.com", name: "Eve (email_verified absent)" },
};

const CLIENT_ID = "heimdall";
const CLIENT_SECRET = "provider-client-secret-0123456789";
const PUBLIC_CLIENT_ID = "heimdall-public";
const APP = "acme";

/**
 * A real OpenID Connect provider (oidc-provider) on a loopback socket. Its login and consent
 * interaction is this test's own route: it signs in whichever account `signInAs` names and
 * grants what was asked, so a "browser" of fetch calls can run the whole code flow.
 */
async function startProvider(redirectUris: { confidential: string[]; public: string[] }) {
  let provider: OidcProvider | undefined;
  // A JWKS with another key under the provider's kid: what a platform pointed at the wrong
  // keys (or an attacker's) would check ID tokens against.
  const { publicKey: impostor } = await generateKeyPair("RS256", { extractable: true });
  const forgedJwks = JSON.stringify({
    keys: [{ ...(await exportJWK(impostor)), kid: "op-key-1", alg: "RS256", use: "sig" }],
  });
  /** Who the interaction signs in, and why the token endpoint refused grants (its detail). */
  const state = { signInAs: "alice", grantErrors: [] as string[] };
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (!provider) return void res.writeHead(503).end();
    if (req.url === "/forged-jwks") {
      return void res.writeHead(200, { "content-type": "application/json" }).end(forgedJwks);
    }
    handle ??= provider.callback();
    if (!req.url?.startsWith("/interaction/")) return handle(req, res);
    void interact(provider, req, res).catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  async function interact(op: OidcProvider, req: IncomingMessage, res: ServerResponse) {
    const details = await op.interactionDetails(req, res);
    if (details.prompt.name === "login") {
      await op.interactionFinished(
        req,
        res,
        { login: { accountId: state.signInAs } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const accountId = details.session?.accountId ?? state.signInAs;
    const grant = details.grantId
      ? await op.Grant.find(details.grantId)
      : new op.Grant({ accountId, clientId: details.params.client_id });
    if (!grant) throw new Error("grant not found");
    const { missingOIDCScope, missingOIDCClaims } = details.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(" "));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    await op.interactionFinished(
      req,
      res,
      { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true },
    );
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  provider = new OidcProviderClass(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: redirectUris.confidential,
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
      {
        client_id: PUBLIC_CLIENT_ID,
        token_endpoint_auth_method: "none",
        redirect_uris: redirectUris.public,
        grant_types: ["authorization_code"],
        response_types: ["code"],
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    findAccount: async (_ctx: unknown, sub: string) => {
      const account = accounts[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    features: { devInteractions: { enabled: false } },
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    jwks: {
      keys: [{ ...(await exportJWK(privateKey)), kid: "op-key-1", alg: "RS256", use: "sig" }],
    },
    cookies: { keys: ["oidc-provider-test-cookie-key"] },
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      IdToken: 300,
      Grant: 600,
      Interaction: 600,
      Session: 600,
    },
  });
  provider.on("grant.error", (_ctx, error) => {
    state.grantErrors.push(error.error_detail ?? error.cause?.message ?? "");
  });
  return {
    issuer,
    state,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

const s256 = (verifier: string) => createHash("sha256").update(verifier).digest("base64url");
const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

/**
 * Platforms end to end over real sockets: Heimdall and an OpenID Connect provider, a browser
 * played by fetch calls. Managing platforms (both mounts, permissions, the sealed secret), then
 * the code flow with PKCE: the redirect, the callback, and what each tampering gets.
 */
describe("authentication platforms (OpenID Connect sign-in)", () => {
  let db: DatabasePort;
  let heimdall: Listening;
  let http: Requester;
  let services: Services;
  let logs: LogEvent[];
  const clock = createTestClock();
  let op: Awaited<ReturnType<typeof startProvider>>;
  let tenant: Tenant;
  let platformId: string;

  const callbackOf = (platform: string) =>
    `${heimdall.url}/v1/apps/${APP}/platforms/${platform}/callback`;
  const rows = () => db.session().db;

  beforeAll(async () => {
    db = await createMemoryDatabase();
    let app: ReturnType<typeof createTestApp>["app"] | undefined;
    // The socket first: with PUBLIC_URL unset, Heimdall's URLs (issuer, callback) are its origin.
    heimdall = await listen({
      fetch: ((...args: Parameters<NonNullable<typeof app>["fetch"]>) => {
        if (!app) throw new Error("app not ready");
        return app.fetch(...args);
      }) as NonNullable<typeof app>["fetch"],
    });
    // The provider listens on loopback: only the allowlist lets Heimdall reach it.
    const testApp = createTestApp({
      db,
      env: { PUBLIC_URL: "", OUTBOUND_ALLOWLIST: "127.0.0.1" },
      clock,
    });
    app = testApp.app;
    services = testApp.services;
    logs = testApp.logs;
    http = overHttp(heimdall.url);
    op = await startProvider({
      confidential: [callbackOf("op")],
      public: [callbackOf("op-public"), callbackOf("op-forged-keys")],
    });
    tenant = await createTenant(http, APP);
  });
  afterAll(async () => {
    await op?.close();
    await heimdall?.close();
    await db?.close();
  });

  /** Starts a sign-in at Heimdall: its redirect to the provider, and the state and PKCE in it. */
  async function startLogin(platform = "op") {
    const res = await fetch(`${heimdall.url}/v1/apps/${APP}/platforms/${platform}/login`, {
      redirect: "manual",
    });
    expect(res.status, await res.clone().text()).toBe(302);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const authorize = new URL(res.headers.get("location") ?? "");
    return { authorize, state: authorize.searchParams.get("state") ?? "" };
  }

  /** Runs the provider's side as a browser would: redirects, cookies, the interaction. */
  async function atProvider(authorize: URL, account: string, jar = cookieJar()) {
    op.state.signInAs = account;
    let url = authorize;
    for (let hop = 0; hop < 12; hop++) {
      const res = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
      jar.store(res);
      const location = res.headers.get("location");
      expect(location, `${res.status} at ${url.pathname}: ${await res.text()}`).toBeTruthy();
      const next = new URL(location ?? "", url);
      if (next.href.startsWith(`${heimdall.url}/`)) return next;
      url = next;
    }
    throw new Error("the provider never redirected back to Heimdall");
  }

  /** A whole sign-in: Heimdall → provider → Heimdall's callback, whose answer is returned. */
  async function signInWith(account: string, platform = "op") {
    const { authorize } = await startLogin(platform);
    const callback = await atProvider(authorize, account);
    return fetch(callback);
  }

  const me = async (accessToken: string) => {
    const res = await send(http, "GET", "/v1/users/me", { headers: bearer(accessToken) });
    expect(res.status, await res.clone().text()).toBe(200);
    return (await readJson(res)).data;
  };

  describe("managing platforms", () => {
    it("creates one as the platform admin; the secret is stored sealed and never answered", async () => {
      const res = await send(http, "POST", `/v1/apps/${APP}/platforms`, {
        headers: adminHeaders,
        body: {
          name: "op",
          display_name: "Test OP",
          issuer: op.issuer,
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          scopes: ["openid", "email", "profile"],
        },
      });
      const text = await res.clone().text();
      expect(res.status, text).toBe(201);
      expect(text).not.toContain(CLIENT_SECRET);
      expect(text).not.toContain("client_secret");
      const body = await readJson(res);
      platformId = body.data.id;
      expect(platformId).toMatch(/^plt_[0-9A-Z]{26}$/);
      expect(body.data).toMatchObject({
        app_id: tenant.app.id,
        name: "op",
        display_name: "Test OP",
        issuer: op.issuer,
        client_id: CLIENT_ID,
        scopes: ["openid", "email", "profile"],
        claim_mapping: {},
        authorization_endpoint: null,
      });
      expect(res.headers.get("location")).toBe(
        `${heimdall.url}/v1/apps/${APP}/platforms/${platformId}`,
      );
      expect(body._links.login).toBe(`${heimdall.url}/v1/apps/${APP}/platforms/op/login`);

      const [row] = await rows().select().from(platforms).where(eq(platforms.id, platformId));
      expect(row?.client_secret_encrypted).toMatch(/^v1\./);
      expect(row?.client_secret_encrypted).not.toContain(CLIENT_SECRET);
      expect(await services.sealer.decrypt(row?.client_secret_encrypted ?? "")).toBe(CLIENT_SECRET);
    });

    it("refuses a second platform of the same name in the app (409)", async () => {
      const res = await send(http, "POST", `/v1/apps/${APP}/platforms`, {
        headers: adminHeaders,
        body: { name: "op", display_name: "Again", issuer: op.issuer, client_id: "x" },
      });
      await expectError(res, 409, "conflict");
    });

    it("lists, gets and updates, changing only the fields sent", async () => {
      const list = await send(http, "GET", `/v1/apps/${APP}/platforms?limit=10`, {
        headers: adminHeaders,
      });
      expect(list.status).toBe(200);
      const page = await readJson(list);
      expect(page.pagination).toMatchObject({ total: 1, limit: 10, offset: 0, has_more: false });
      expect(page.data.map((platform: { id: string }) => platform.id)).toEqual([platformId]);
      expect(JSON.stringify(page)).not.toContain("client_secret");

      const got = await send(http, "GET", `/v1/apps/${APP}/platforms/${platformId}`, {
        headers: adminHeaders,
      });
      expect(got.status).toBe(200);
      expect((await readJson(got)).data.name).toBe("op");
      await expectError(
        await send(http, "GET", `/v1/apps/${APP}/platforms/plt_nothing`, { headers: adminHeaders }),
        404,
        "not_found",
      );

      const before = await rows().select().from(platforms).where(eq(platforms.id, platformId));
      const patched = await send(http, "PATCH", `/v1/apps/${APP}/platforms/${platformId}`, {
        headers: adminHeaders,
        body: { display_name: "Test OpenID Provider", client_secret: CLIENT_SECRET },
      });
      const text = await patched.clone().text();
      expect(patched.status, text).toBe(200);
      expect(text).not.toContain(CLIENT_SECRET);
      expect((await readJson(patched)).data).toMatchObject({
        display_name: "Test OpenID Provider",
        scopes: ["openid", "email", "profile"],
      });
      const [after] = await rows().select().from(platforms).where(eq(platforms.id, platformId));
      // A new secret is sealed anew; the fields not sent stay as they were.
      expect(after?.client_secret_encrypted).not.toBe(before[0]?.client_secret_encrypted);
      expect(after?.scopes).toEqual(before[0]?.scopes);
      expect(after?.claim_mapping).toEqual({});
    });

    it("is the app's own at /v1/platforms: its admin manages them, a reader gets 403", async () => {
      const asAdmin = bearer(tenant.admin.accessToken);
      const list = await send(http, "GET", "/v1/platforms", { headers: asAdmin });
      expect(list.status).toBe(200);
      expect((await readJson(list)).data.map((p: { id: string }) => p.id)).toEqual([platformId]);

      const created = await send(http, "POST", "/v1/platforms", {
        headers: asAdmin,
        body: {
          name: "op-public",
          display_name: "Test OP (public client, endpoints stored)",
          issuer: op.issuer,
          authorization_endpoint: `${op.issuer}/auth`,
          token_endpoint: `${op.issuer}/token`,
          jwks_uri: `${op.issuer}/jwks`,
          userinfo_endpoint: `${op.issuer}/me`,
          client_id: PUBLIC_CLIENT_ID,
          claim_mapping: { name: "name" },
        },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const publicPlatform = (await readJson(created)).data;
      expect(created.headers.get("location")).toBe(
        `${heimdall.url}/v1/platforms/${publicPlatform.id}`,
      );
      await expectError(
        await send(http, "POST", "/v1/platforms", {
          headers: asAdmin,
          body: { name: "op-public", display_name: "x", issuer: op.issuer, client_id: "x" },
        }),
        409,
        "conflict",
      );
      // The update schema has defaults for scopes and claim_mapping: a PATCH must not apply them.
      const renamed = await send(http, "PATCH", `/v1/platforms/${publicPlatform.id}`, {
        headers: asAdmin,
        body: { display_name: "Test OP (public)" },
      });
      expect(renamed.status, await renamed.clone().text()).toBe(200);
      expect((await readJson(renamed)).data).toMatchObject({
        display_name: "Test OP (public)",
        claim_mapping: { name: "name" },
        token_endpoint: `${op.issuer}/token`,
      });

      const throwaway = await send(http, "POST", "/v1/platforms", {
        headers: asAdmin,
        body: { name: "gone", display_name: "Gone", issuer: op.issuer, client_id: "x" },
      });
      const gone = (await readJson(throwaway)).data;
      expect(
        (await send(http, "DELETE", `/v1/platforms/${gone.id}`, { headers: asAdmin })).status,
      ).toBe(204);
      await expectError(
        await send(http, "GET", `/v1/platforms/${gone.id}`, { headers: asAdmin }),
        404,
        "not_found",
      );

      const asReader = bearer(tenant.reader.accessToken);
      await expectError(
        await send(http, "POST", "/v1/platforms", {
          headers: asReader,
          body: { name: "nope", display_name: "Nope", issuer: op.issuer, client_id: "x" },
        }),
        403,
        "forbidden",
      );
      await expectError(
        await send(http, "GET", "/v1/platforms", { headers: asReader }),
        403,
        "forbidden",
      );
      await expectError(
        await send(http, "DELETE", `/v1/platforms/${platformId}`, { headers: asReader }),
        403,
        "forbidden",
      );

      const audit = await rows()
        .select({ action: auditLogs.action, target: auditLogs.target_id })
        .from(auditLogs)
        .where(eq(auditLogs.app_id, tenant.app.id));
      expect(audit).toEqual(
        expect.arrayContaining([
          { action: "platform.created", target: platformId },
          { action: "platform.updated", target: platformId },
          { action: "platform.created", target: publicPlatform.id },
          { action: "platform.deleted", target: gone.id },
        ]),
      );
    });

    it("documents the routes, the secret only as input", async () => {
      const doc = await readJson(await send(http, "GET", "/v1/openapi.json"));
      for (const path of [
        "/v1/platforms",
        "/v1/platforms/{platform_id}",
        "/v1/apps/{app_name}/platforms",
        "/v1/apps/{app_name}/platforms/{platform_id}",
      ]) {
        expect(doc.paths[path], path).toBeDefined();
      }
      expect(doc.paths["/v1/apps/{app_name}/platforms/{name}/login"].get.responses).toHaveProperty(
        "302",
      );
      expect(doc.paths["/v1/apps/{app_name}/platforms/{name}/login"].get.security).toBeUndefined();
      expect(doc.components.schemas.CreatePlatform.properties).toHaveProperty("client_secret");
      expect(doc.components.schemas.Platform.properties).not.toHaveProperty("client_secret");
      expect(doc.components.schemas.Platform.properties).not.toHaveProperty(
        "client_secret_encrypted",
      );
      const catalogue = await readJson(
        await send(http, "GET", `/v1/apps/${APP}/permissions`, { headers: adminHeaders }),
      );
      expect(JSON.stringify(catalogue)).toContain("platforms:write");
    });

    it("takes no http:// provider in production", async () => {
      const production = createTestApp({ db, env: { APP_ENV: "production" }, clock });
      const res = await send(production.app, "POST", `/v1/apps/${APP}/platforms`, {
        headers: adminHeaders,
        body: { name: "plain-http", display_name: "x", issuer: op.issuer, client_id: "x" },
      });
      const body = await expectError(res, 400, "validation_error");
      expect(body.error.details).toEqual([{ field: "json.issuer", reason: "must be https" }]);
    });
  });

  describe("signing in", () => {
    it("redirects to the provider with code, PKCE S256, state and nonce, and keeps them sealed", async () => {
      const { authorize, state } = await startLogin();
      expect(authorize.origin).toBe(op.issuer);
      expect(authorize.pathname).toBe("/auth");
      const params = Object.fromEntries(authorize.searchParams);
      expect(params).toMatchObject({
        response_type: "code",
        client_id: CLIENT_ID,
        scope: "openid email profile",
        code_challenge_method: "S256",
        redirect_uri: callbackOf("op"),
      });
      expect(state.length).toBeGreaterThanOrEqual(32);
      expect(params.nonce?.length).toBeGreaterThanOrEqual(32);

      const [login] = await rows()
        .select()
        .from(platformLogins)
        .where(eq(platformLogins.state_hash, sha256(state)));
      expect(login).toBeDefined();
      expect(login?.platform_id).toBe(platformId);
      expect(login?.nonce).toBe(params.nonce);
      expect(login?.used_at).toBeNull();
      expect(login?.expires_at.getTime()).toBe(clock.now().getTime() + 10 * 60_000);
      const verifier = await services.sealer.decrypt(login?.code_verifier_encrypted ?? "");
      expect(login?.code_verifier_encrypted).not.toContain(verifier);
      expect(s256(verifier)).toBe(params.code_challenge);
    });

    it("answers 404 for a platform or app that does not exist", async () => {
      await expectError(
        await fetch(`${heimdall.url}/v1/apps/${APP}/platforms/nothing/login`, {
          redirect: "manual",
        }),
        404,
        "not_found",
      );
      await expectError(
        await fetch(`${heimdall.url}/v1/apps/no-such-app/platforms/op/login`, {
          redirect: "manual",
        }),
        404,
        "not_found",
      );
    });

    let alice: { id: string; accessToken: string };

    it("signs a new provider account in as a new user: tokens, no password, no role", async () => {
      const res = await signInWith("alice");
      const text = await res.clone().text();
      expect(res.status, text).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const tokens = await readJson(res);
      expect(tokens).toMatchObject({ token_type: "Bearer", expires_in: expect.any(Number) });
      expect(tokens.access_token.split(".")).toHaveLength(3);
      expect(tokens.refresh_token).toMatch(/^rt_/);

      const user = await me(tokens.access_token);
      expect(user).toMatchObject({
        email: "alice@example.com",
        display_name: "Alice Liddell",
        roles: [],
        status: "active",
        // The provider vouched for the address (email_verified).
        email_verified: true,
      });
      alice = { id: user.id, accessToken: tokens.access_token };
      const [row] = await rows().select().from(users).where(eq(users.id, user.id));
      expect(row?.password_hash).toBeNull();
      expect(row?.last_login_at).not.toBeNull();
      const links = await rows()
        .select()
        .from(userIdentities)
        .where(eq(userIdentities.user_id, user.id));
      expect(links).toEqual([
        expect.objectContaining({
          platform_id: platformId,
          subject: "alice",
          email: "alice@example.com",
        }),
      ]);
      const audit = await rows()
        .select({ action: auditLogs.action, actor: auditLogs.actor_id })
        .from(auditLogs)
        .where(and(eq(auditLogs.app_id, tenant.app.id), eq(auditLogs.actor_id, user.id)));
      expect(audit.map((event) => event.action).sort()).toEqual(
        ["auth.platform.login", "identity.linked", "user.created"].sort(),
      );
    });

    it("maps the same provider account to the same user the next time", async () => {
      const res = await signInWith("alice");
      expect(res.status, await res.clone().text()).toBe(200);
      const user = await me((await readJson(res)).access_token);
      expect(user.id).toBe(alice.id);
      const named = await rows().select().from(users).where(eq(users.email, "alice@example.com"));
      expect(named).toHaveLength(1);
      const links = await rows()
        .select()
        .from(userIdentities)
        .where(eq(userIdentities.subject, "alice"));
      expect(links).toHaveLength(1);
    });

    it("refuses an unknown state, and the same callback twice (400 invalid_request)", async () => {
      const { authorize } = await startLogin();
      const callback = await atProvider(authorize, "alice");
      const forged = new URL(callback);
      forged.searchParams.set("state", "not-a-state-heimdall-issued");
      const refused = await expectError(await fetch(forged), 400, "invalid_request");
      expect(refused.error.message).toBe("unknown or used state");

      expect((await fetch(callback)).status).toBe(200);
      const replayed = await expectError(await fetch(callback), 400, "invalid_request");
      expect(replayed.error.message).toBe("unknown or used state");
      await expectError(await fetch(`${callbackOf("op")}?code=abc`), 400, "invalid_request");
      await expectError(
        await fetch(`${heimdall.url}/v1/apps/${APP}/platforms/nothing/callback?code=a&state=b`),
        404,
        "not_found",
      );
    });

    it("passes on the provider's refusal of a code under another sign-in's PKCE verifier", async () => {
      const first = await startLogin();
      const second = await startLogin();
      const callback = await atProvider(first.authorize, "alice");
      // The first sign-in's code with the second's state: the second's verifier and nonce.
      const swapped = new URL(callback);
      swapped.searchParams.set("state", second.state);
      const logged = logs.length;
      op.state.grantErrors.length = 0;
      const body = await expectError(await fetch(swapped), 400, "invalid_grant");
      expect(body.error.message).toContain("invalid_grant");
      const warning = logs
        .slice(logged)
        .find((event) => event.message === "platform sign-in failed at the provider");
      expect(warning).toMatchObject({
        level: "warn",
        platform_id: platformId,
        error: "invalid_grant",
      });
      expect(warning?.error_description).toBe("grant request is invalid");
      // The provider refused it for the verifier, nothing else.
      expect(op.state.grantErrors).toEqual(["code_verifier does not match code_challenge"]);
      // The second state is spent now: Heimdall itself refuses it the next time.
      await expectError(await fetch(swapped), 400, "invalid_request");
    });

    it("refuses a code already redeemed, under a fresh state (provider's invalid_grant)", async () => {
      const first = await startLogin();
      const callback = await atProvider(first.authorize, "alice");
      expect((await fetch(callback)).status).toBe(200);
      const second = await startLogin();
      const reused = new URL(callback);
      reused.searchParams.set("state", second.state);
      op.state.grantErrors.length = 0;
      await expectError(await fetch(reused), 400, "invalid_grant");
      // oidc-provider checks the verifier before whether the code was used: either way, refused.
      expect(op.state.grantErrors).toHaveLength(1);
    });

    it("refuses an expired state", async () => {
      const { authorize } = await startLogin();
      const callback = await atProvider(authorize, "alice");
      clock.advance(10 * 60_000 + 1_000);
      await expectError(await fetch(callback), 400, "invalid_request");
    });

    it("links a verified email to the existing user of that email only on a platform the platform admin trusts", async () => {
      const created = await send(http, "POST", `/v1/apps/${APP}/users`, {
        headers: adminHeaders,
        body: { email: "Bob@acme.test", password: "correct horse battery" },
      });
      expect(created.status).toBe(201);
      const bob = (await readJson(created)).data;
      // Not trusted (the default): the provider's say-so does not hand over Bob's account.
      const refused = await expectError(await signInWith("bob"), 409, "conflict");
      expect(refused.error.message).toContain("/v1/users/me/platforms/op/link");
      expect(
        await rows().select().from(userIdentities).where(eq(userIdentities.user_id, bob.id)),
      ).toEqual([]);
      const [failed] = await rows()
        .select()
        .from(auditLogs)
        .where(and(eq(auditLogs.action, "auth.login.failed"), eq(auditLogs.target_id, bob.id)));
      expect(failed?.metadata).toMatchObject({ reason: "link_required", platform: "op" });

      // An app admin with platforms:write cannot trust a provider; the platform admin can.
      await expectError(
        await send(http, "PATCH", `/v1/platforms/${platformId}`, {
          headers: bearer(tenant.admin.accessToken),
          body: { trusted: true },
        }),
        403,
        "forbidden",
      );
      await expectError(
        await send(http, "POST", "/v1/platforms", {
          headers: bearer(tenant.admin.accessToken),
          body: {
            name: "self-trusted",
            display_name: "x",
            issuer: op.issuer,
            client_id: "x",
            trusted: true,
          },
        }),
        403,
        "forbidden",
      );
      const trusted = await send(http, "PATCH", `/v1/apps/${APP}/platforms/${platformId}`, {
        headers: adminHeaders,
        body: { trusted: true },
      });
      expect((await readJson(trusted)).data.trusted).toBe(true);
      const res = await signInWith("bob");
      expect(res.status, await res.clone().text()).toBe(200);
      // Linked by the provider-verified address, which now counts as verified here too.
      expect(await me((await readJson(res)).access_token)).toMatchObject({
        id: bob.id,
        email_verified: true,
      });
      const links = await rows()
        .select()
        .from(userIdentities)
        .where(eq(userIdentities.user_id, bob.id));
      expect(links).toHaveLength(1);
      const [linked] = await rows()
        .select()
        .from(auditLogs)
        .where(and(eq(auditLogs.action, "identity.linked"), eq(auditLogs.actor_id, bob.id)));
      expect(linked?.metadata).toMatchObject({ via: "verified_email", platform: "op" });
    });

    it("links a provider account to a signed-in user who asks, whatever its email", async () => {
      const created = await send(http, "POST", `/v1/apps/${APP}/users`, {
        headers: adminHeaders,
        body: { email: "frank@acme.test", password: PASSWORD },
      });
      const frank = (await readJson(created)).data;
      const session = await signIn(http, APP, "frank@acme.test");
      await expectError(
        await send(http, "POST", "/v1/users/me/platforms/op/link", { headers: adminHeaders }),
        403,
        "forbidden",
      );
      const started = await send(http, "POST", "/v1/users/me/platforms/op/link", {
        headers: bearer(session.accessToken),
      });
      expect(started.status, await started.clone().text()).toBe(200);
      const authorize = new URL((await readJson(started)).data.authorization_url);
      expect(authorize.origin).toBe(op.issuer);
      // "nomail" has no email at all: only the signed-in user's own sign-in links it.
      const res = await fetch(await atProvider(authorize, "nomail"));
      expect(res.status, await res.clone().text()).toBe(200);
      expect((await me((await readJson(res)).access_token)).id).toBe(frank.id);
      const [link] = await rows()
        .select()
        .from(userIdentities)
        .where(eq(userIdentities.subject, "nomail"));
      expect(link?.user_id).toBe(frank.id);
      const [audited] = await rows()
        .select()
        .from(auditLogs)
        .where(and(eq(auditLogs.action, "identity.linked"), eq(auditLogs.actor_id, frank.id)));
      expect(audited?.metadata).toMatchObject({ via: "signed_in", platform: "op" });

      // The same provider account cannot be linked to someone else afterwards.
      const other = await signIn(http, APP, tenant.admin.email);
      const again = await readJson(
        await send(http, "POST", "/v1/users/me/platforms/op/link", {
          headers: bearer(other.accessToken),
        }),
      );
      await expectError(
        await fetch(await atProvider(new URL(again.data.authorization_url), "nomail")),
        409,
        "conflict",
      );
      await rows().delete(userIdentities).where(eq(userIdentities.subject, "nomail"));
    });

    it("neither links nor creates a user by an email the provider does not verify (403)", async () => {
      const created = await send(http, "POST", `/v1/apps/${APP}/users`, {
        headers: adminHeaders,
        body: { email: "victim@acme.test", password: "correct horse battery" },
      });
      expect(created.status).toBe(201);
      const victim = (await readJson(created)).data;
      // mallory claims the victim's address, unverified; eve an address nobody has, unverified.
      const taken = await expectError(await signInWith("mallory"), 403, "forbidden");
      const free = await expectError(await signInWith("eve"), 403, "forbidden");
      // One answer whether or not the address has a user: it does not tell who has an account.
      expect(taken.error.message).toBe(free.error.message);
      expect(taken.error.message).toMatch(/email_verified/);
      for (const subject of ["mallory", "eve"]) {
        expect(
          await rows().select().from(userIdentities).where(eq(userIdentities.subject, subject)),
        ).toEqual([]);
      }
      expect(
        await rows().select().from(userIdentities).where(eq(userIdentities.user_id, victim.id)),
      ).toEqual([]);
      expect(
        await rows().select().from(users).where(eq(users.email, "victim@acme.test")),
      ).toHaveLength(1);
      expect(await rows().select().from(users).where(eq(users.email, "eve@example.com"))).toEqual(
        [],
      );
      const refusals = await rows()
        .select({ target: auditLogs.target_id, metadata: auditLogs.metadata })
        .from(auditLogs)
        .where(and(eq(auditLogs.app_id, tenant.app.id), eq(auditLogs.action, "auth.login.failed")));
      expect(refusals).toEqual(
        expect.arrayContaining([
          { target: victim.id, metadata: { reason: "email_unverified", platform: "op" } },
          { target: null, metadata: { reason: "email_unverified", platform: "op" } },
        ]),
      );
    });

    it("refuses an account with no email (422)", async () => {
      await expectError(await signInWith("nomail"), 422, "unprocessable");
    });

    it("refuses a deactivated or banned user (403)", async () => {
      const first = await signInWith("carol");
      expect(first.status).toBe(200);
      const carol = await me((await readJson(first)).access_token);

      const deactivate = await send(http, "PATCH", `/v1/apps/${APP}/users/${carol.id}`, {
        headers: adminHeaders,
        body: { status: "deactivated" },
      });
      expect(deactivate.status).toBe(200);
      await expectError(await signInWith("carol"), 403, "forbidden");

      await send(http, "PATCH", `/v1/apps/${APP}/users/${carol.id}`, {
        headers: adminHeaders,
        body: { status: "active" },
      });
      expect((await signInWith("carol")).status).toBe(200);
      const ban = await send(http, "POST", "/v1/admin/bans", {
        headers: adminHeaders,
        body: { user_id: carol.id, reason: "test" },
      });
      expect(ban.status, await ban.clone().text()).toBe(201);
      await expectError(await signInWith("carol"), 403, "forbidden");
    });

    it("asks a user with 2FA on for the second factor", async () => {
      await rows()
        .update(users)
        .set({ totp_enabled_at: clock.now() })
        .where(eq(users.id, alice.id));
      const sessionsBefore = await rows()
        .select()
        .from(auditLogs)
        .where(and(eq(auditLogs.action, "auth.platform.login"), eq(auditLogs.actor_id, alice.id)));
      const body = await expectError(await signInWith("alice"), 401, "mfa_required");
      expect(body.error.mfa_token?.split(".")).toHaveLength(3);
      const sessionsAfter = await rows()
        .select()
        .from(auditLogs)
        .where(and(eq(auditLogs.action, "auth.platform.login"), eq(auditLogs.actor_id, alice.id)));
      expect(sessionsAfter).toHaveLength(sessionsBefore.length);
      await rows().update(users).set({ totp_enabled_at: null }).where(eq(users.id, alice.id));
    });

    it("signs in through a public client whose endpoints are stored (no discovery)", async () => {
      const { authorize } = await startLogin("op-public");
      expect(authorize.searchParams.get("client_id")).toBe(PUBLIC_CLIENT_ID);
      // Added by the app's admin, so untrusted: Alice's verified email does not link her here...
      await expectError(await fetch(await atProvider(authorize, "alice")), 409, "conflict");
      // ...until the platform admin trusts the provider.
      const [publicPlatform] = await rows()
        .select()
        .from(platforms)
        .where(eq(platforms.name, "op-public"));
      const trusted = await send(http, "PATCH", `/v1/apps/${APP}/platforms/${publicPlatform?.id}`, {
        headers: adminHeaders,
        body: { trusted: true },
      });
      expect(trusted.status).toBe(200);
      const again = await startLogin("op-public");
      const res = await fetch(await atProvider(again.authorize, "alice"));
      expect(res.status, await res.clone().text()).toBe(200);
      const user = await me((await readJson(res)).access_token);
      // Another (now trusted) platform: the verified email links Alice's account to the same user.
      expect(user.id).toBe(alice.id);
      expect(
        await rows().select().from(userIdentities).where(eq(userIdentities.user_id, alice.id)),
      ).toHaveLength(2);
    });

    it("refuses an ID token whose signature the platform's JWKS does not confirm", async () => {
      const created = await send(http, "POST", `/v1/apps/${APP}/platforms`, {
        headers: adminHeaders,
        body: {
          name: "op-forged-keys",
          display_name: "Test OP, wrong keys",
          issuer: op.issuer,
          authorization_endpoint: `${op.issuer}/auth`,
          token_endpoint: `${op.issuer}/token`,
          jwks_uri: `${op.issuer}/forged-jwks`,
          userinfo_endpoint: `${op.issuer}/me`,
          client_id: PUBLIC_CLIENT_ID,
        },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const logged = logs.length;
      op.state.grantErrors.length = 0;
      const body = await expectError(
        await signInWith("dave", "op-forged-keys"),
        400,
        "invalid_grant",
      );
      expect(body.error.message).toBe(
        "The identity provider's answer did not validate: JWT signature verification failed",
      );
      // The provider issued the tokens; Heimdall refused them.
      expect(op.state.grantErrors).toEqual([]);
      expect(
        logs
          .slice(logged)
          .find((event) => event.message === "platform sign-in failed at the provider"),
      ).toMatchObject({
        level: "warn",
        code: "OAUTH_INVALID_RESPONSE",
        cause: expect.stringMatching(/signature/),
      });
      expect(await rows().select().from(users).where(eq(users.email, "dave@example.com"))).toEqual(
        [],
      );
    });
  });
});
