import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsoleLogger } from "../src/adapters/console-logger";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { createNodeRedis } from "../src/adapters/node/redis";
import { createRedisRevocationStore } from "../src/adapters/redis/revocations";
import { createUpstashRedis } from "../src/adapters/upstash/redis";
import type { App } from "../src/app";
import type { DatabasePort, Ports, RevocationStore } from "../src/ports";
import type { Services } from "../src/services/context";
import { liveRoomHost } from "../src/services/socket-auth";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "./support/identity";
import { announceSkip, services } from "./support/services";
import { totpCode } from "./support/totp";
import { startUpstashRest, type UpstashRestServer } from "./support/upstash-rest";

/**
 * Anything single-use is spent by one atomic operation whose answer says whether this caller was
 * first, never by a check and a revocation after it. The same concurrent spends run against
 * every revocation adapter: the in-memory store, Upstash (through the REST shim over real
 * Redis, the production store on Workers, where a check-then-revoke let most of 20 through) and
 * the native Redis connection of REDIS_URL on Node:
 * the store's own `spend`, then the three things spent through it (a live socket's ticket, a
 * password sign-in's `mfa_token`, the OAuth consent form's sealed transaction).
 */

const CONCURRENT = 20;
const clock = createTestClock();

interface Adapter {
  name: string;
  open(): Promise<{ store: RevocationStore; close(): Promise<void> }>;
}
const adapters: Adapter[] = [
  {
    name: "memory",
    open: async () => ({ store: createMemoryRevocationStore(clock), close: async () => {} }),
  },
];
if (services.redis) {
  const redisUrl = services.redis;
  adapters.push({
    name: "Upstash",
    async open() {
      const server: UpstashRestServer = await startUpstashRest({ redisUrl });
      const redis = createUpstashRedis({ url: server.url, token: server.token });
      const prefix = `heimdall-test:${crypto.randomUUID()}:`;
      return { store: createRedisRevocationStore(redis, clock, { prefix }), close: server.close };
    },
  });
  adapters.push({
    name: "native",
    async open() {
      const redis = createNodeRedis({
        url: redisUrl,
        logger: createConsoleLogger({ level: "silent" }),
      });
      const prefix = `heimdall-test:${crypto.randomUUID()}:`;
      return { store: createRedisRevocationStore(redis, clock, { prefix }), close: redis.close };
    },
  });
} else {
  announceSkip("single-use spends on Upstash and native Redis", "TEST_REDIS_URL");
}

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

const all = <T>(make: (i: number) => Promise<T>) =>
  Promise.all(Array.from({ length: CONCURRENT }, (_, i) => make(i)));

describe.each(adapters)("single-use spends on the $name revocation store", (adapter) => {
  let store: RevocationStore;
  let close: () => Promise<void>;
  let app: App;
  let ports: Ports;
  let services: Services;
  let tenant: Tenant;
  const appName = `once-${adapter.name.toLowerCase()}`;

  beforeAll(async () => {
    ({ store, close } = await adapter.open());
    ({ app, ports, services } = createTestApp({ db, clock, ports: { revocations: store } }));
    tenant = await createTenant(app, appName);
  });
  afterAll(() => close());

  it("answers true to exactly one of concurrent spends of an id, and counts it as revoked", async () => {
    const expiresAt = new Date(clock.now().getTime() + 60_000);
    const answers = await all(() => store.spend("jti-contract", expiresAt));
    expect(answers.filter(Boolean)).toHaveLength(1);
    expect(await store.spend("jti-contract", expiresAt)).toBe(false);
    expect(
      await store.isRevoked({ tokenId: "jti-contract", issuedAt: clock.now(), subjects: [] }),
    ).toBe(true);
    // Another id is its own.
    expect(await store.spend("jti-other", expiresAt)).toBe(true);
  });

  it("lets one of concurrent sockets in with one ticket", async () => {
    const issued = await send(app, "POST", "/v1/ws/ticket", {
      headers: bearer(tenant.admin.accessToken),
    });
    expect(issued.status).toBe(201);
    const { ticket } = (await readJson(issued)).data;
    const host = liveRoomHost(services, ports.db);
    const principals = await all(() => host.authenticate(ticket, "http://heimdall.test"));
    expect(principals.filter(Boolean)).toHaveLength(1);
    expect(await host.authenticate(ticket, "http://heimdall.test")).toBeUndefined();
  });

  it("completes one sign-in from one mfa_token, whatever the valid factors sent at once", async () => {
    const token = bearer(tenant.reader.accessToken);
    const started = await send(app, "POST", "/v1/users/me/2fa", { headers: token });
    const { secret } = (await readJson(started)).data;
    const confirmed = await send(app, "POST", "/v1/users/me/2fa/verify", {
      body: { code: totpCode(secret, clock.now()) },
      headers: token,
    });
    expect(confirmed.status).toBe(200);
    const recoveryCodes: string[] = (await readJson(confirmed)).data.recovery_codes;
    const challenge = await send(app, "POST", `/v1/apps/${appName}/tokens`, {
      body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
    });
    const mfaToken = (await readJson(challenge)).error.mfa_token;

    const answers = await Promise.all(
      recoveryCodes.map((recovery_code) =>
        send(app, "POST", `/v1/apps/${appName}/tokens`, {
          body: { grant_type: "mfa_otp", mfa_token: mfaToken, recovery_code },
        }),
      ),
    );
    const statuses = answers.map((res) => res.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status !== 200)).toEqual(Array(9).fill(400));
    const sessions = await readJson(
      await send(app, "GET", `/v1/apps/${appName}/audit-logs?action=auth.login.succeeded`, {
        headers: adminHeaders,
      }),
    );
    const viaRecovery = sessions.data.filter(
      (event: { metadata: { grant_type?: string } }) =>
        event.metadata.grant_type === "mfa_recovery_code",
    );
    expect(viaRecovery).toHaveLength(1);
  });

  it("issues one code from one consent form answered at once many times", async () => {
    const client = await send(app, "POST", `/v1/apps/${appName}/oauth/clients`, {
      body: {
        name: "Once",
        type: "public",
        redirect_uris: ["https://client.example/cb"],
        scopes: ["openid"],
      },
      headers: adminHeaders,
    });
    const clientId = (await readJson(client)).data.client_id;
    const query = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: "https://client.example/cb",
      scope: "openid",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    });
    const txOf = async (res: Response) =>
      /name="tx" value="([^"]+)"/.exec(await res.text())?.[1] ?? "";
    const post = (fields: Record<string, string>) =>
      app.request(`/v1/apps/${appName}/oauth/authorize`, {
        method: "POST",
        body: new URLSearchParams(fields),
      });
    const signInPage = await app.request(`/v1/apps/${appName}/oauth/authorize?${query}`);
    const consent = await post({
      tx: await txOf(signInPage),
      email: tenant.admin.email,
      password: PASSWORD,
    });
    expect(consent.status).toBe(200);
    const tx = await txOf(consent);

    const answers = await all(async () => post({ tx, decision: "allow" }));
    const redirects = answers.filter((res) => res.status === 302);
    expect(redirects).toHaveLength(1);
    expect(new URL(redirects[0]?.headers.get("location") ?? "").searchParams.get("code")).toMatch(
      /^oac_/,
    );
    expect(answers.filter((res) => res.status === 400)).toHaveLength(CONCURRENT - 1);
    const again = await post({ tx, decision: "deny" });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("answered already");
  });
});
