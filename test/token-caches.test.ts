import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { decodeProtectedHeader } from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createRedisRevocationStore } from "../src/adapters/redis/revocations";
import { createUpstashRedis } from "../src/adapters/upstash/redis";
import type { App } from "../src/app";
import type { Database, DatabasePort, Ports } from "../src/ports";
import { createCredential, updateCredential } from "../src/routes/credentials/credentials.routes";
import { issueToken } from "../src/routes/tokens/tokens.routes";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { databaseBackends } from "./support/backends";
import { readBody, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, signIn } from "./support/identity";
import { announceSkip, services as testServices } from "./support/services";
import { startUpstashRest, type UpstashRestServer } from "./support/upstash-rest";
import { until } from "./support/wait";

const admin = { headers: adminHeaders };
const basic = (id: string, secret: string) => ({
  Authorization: `Basic ${btoa(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`)}`,
});

/** The port, with every `select` its handles start counted (transactions' own reads are not). */
function countingSelects(port: DatabasePort) {
  const counter = { selects: 0 };
  const counted = (db: Database) =>
    new Proxy(db, {
      get(target, property, receiver) {
        if (property === "select") counter.selects += 1;
        return Reflect.get(target, property, receiver);
      },
    });
  const wrapped: DatabasePort = {
    driver: port.driver,
    sharedAcrossRequests: port.sharedAcrossRequests,
    session() {
      const session = port.session();
      return { db: counted(session.db), release: () => session.release() };
    },
    close: () => port.close(),
  };
  return { port: wrapped, counter };
}

function clientOf(app: App, appName: string) {
  return {
    token(clientId: string, secret: string) {
      return app.request(`/v1/apps/${appName}/tokens`, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          ...basic(clientId, secret),
        },
        body: new URLSearchParams({ grant_type: "client_credentials" }),
      });
    },
    async credential(name: string) {
      const res = await send(app, "POST", `/v1/apps/${appName}/credentials`, {
        body: { name, permissions: ["users:read"] },
        ...admin,
      });
      return (await readBody(res, createCredential, 201)).data;
    },
  };
}

describe.each(databaseBackends("token caches"))("token caches on $name", (backend) => {
  const clock = createTestClock();
  let opened: Awaited<ReturnType<typeof backend.open>>;
  let app: App;
  let counter: { selects: number };
  let client: ReturnType<typeof clientOf>;
  const appName = "cache-tenant";

  beforeAll(async () => {
    opened = await backend.open();
    const counting = countingSelects(opened.db);
    counter = counting.counter;
    ({ app } = createTestApp({ db: counting.port, clock }));
    await createTenant(app, appName);
    client = clientOf(app, appName);
  });
  afterAll(() => opened.dispose());
  // Past the window in which a change recorded a moment ago still invalidates fresh entries.
  beforeEach(() => clock.advance(5_000));

  /** Issues twice, and checks the second answer read nothing from the database. */
  async function warm(clientId: string, secret: string, through = client) {
    expect((await through.token(clientId, secret)).status).toBe(200);
    const before = counter.selects;
    const res = await through.token(clientId, secret);
    expect(res.status).toBe(200);
    expect(counter.selects - before).toBe(0);
    return res;
  }

  it("serves a client_credentials request from cache, and batches last_used_at", async () => {
    const credential = await client.credential("cached");
    await warm(credential.client_id, credential.client_secret);
    const listed = async () =>
      (await readJson(await send(app, "GET", `/v1/apps/${appName}/credentials`, admin))).data.find(
        (row: { id: string }) => row.id === credential.id,
      );
    expect((await listed()).last_used_at).toBeNull();
    clock.advance(61_000);
    expect((await client.token(credential.client_id, credential.client_secret)).status).toBe(200);
    await until(async () => (await listed()).last_used_at === clock.now().toISOString(), {
      message: "the flushed last_used_at",
    });
  });

  it("refuses a rotated secret and accepts the new one on the very next request", async () => {
    const credential = await client.credential("rotated");
    await warm(credential.client_id, credential.client_secret);
    const rotated = await send(app, "PATCH", `/v1/apps/${appName}/credentials/${credential.id}`, {
      body: { rotate_secret: true, grace_period_seconds: 0 },
      ...admin,
    });
    const { client_secret: secret } = (await readBody(rotated, updateCredential, 200)).data;
    expect(secret).toMatch(/^sk_live_/);
    expect((await client.token(credential.client_id, credential.client_secret)).status).toBe(401);
    expect((await client.token(credential.client_id, secret as string)).status).toBe(200);
  });

  it("keeps the previous secret for its grace period after a rotation", async () => {
    const credential = await client.credential("graceful");
    await warm(credential.client_id, credential.client_secret);
    await send(app, "PATCH", `/v1/apps/${appName}/credentials/${credential.id}`, {
      body: { rotate_secret: true, grace_period_seconds: 60 },
      ...admin,
    });
    expect((await client.token(credential.client_id, credential.client_secret)).status).toBe(200);
    clock.advance(61_000);
    expect((await client.token(credential.client_id, credential.client_secret)).status).toBe(401);
  });

  it("refuses a revoked (deleted) credential on the very next request", async () => {
    const credential = await client.credential("revoked");
    await warm(credential.client_id, credential.client_secret);
    const revoked = await send(
      app,
      "DELETE",
      `/v1/apps/${appName}/credentials/${credential.id}`,
      admin,
    );
    expect(revoked.status).toBe(200);
    const refused = await client.token(credential.client_id, credential.client_secret);
    expect(refused.status).toBe(401);
    expect((await readJson(refused)).error.code).toBe("invalid_client");
  });

  it("applies a credential's changed permissions to its next token", async () => {
    const credential = await client.credential("narrowed");
    await warm(credential.client_id, credential.client_secret);
    await send(app, "PATCH", `/v1/apps/${appName}/credentials/${credential.id}`, {
      body: { permissions: ["roles:read"] },
      ...admin,
    });
    const res = await client.token(credential.client_id, credential.client_secret);
    expect((await readBody(res, issueToken, 200)).scope).toBe("roles:read");
  });

  it("applies a changed access_token_ttl and signing_algorithm on the next token", async () => {
    const credential = await client.credential("settings");
    const first = await readBody(
      await warm(credential.client_id, credential.client_secret),
      issueToken,
      200,
    );
    expect(first.expires_in).toBe(3600);
    expect(decodeProtectedHeader(first.access_token).alg).toBe("RS256");
    const patched = await send(app, "PATCH", `/v1/apps/${appName}/settings`, {
      body: { access_token_ttl: 120, signing_algorithm: "ES256" },
      ...admin,
    });
    expect(patched.status).toBe(200);
    const next = await readBody(
      await client.token(credential.client_id, credential.client_secret),
      issueToken,
      200,
    );
    expect(next.expires_in).toBe(120);
    expect(decodeProtectedHeader(next.access_token).alg).toBe("ES256");
    const user = await signIn(app, appName, `admin@${appName}.test`);
    expect(decodeProtectedHeader(user.accessToken).alg).toBe("ES256");
  });

  it("refuses tokens of an archived app on the next request, password grant included", async () => {
    const name = "cache-archived";
    await createTenant(app, name);
    const archived = clientOf(app, name);
    const credential = await archived.credential("archived");
    await warm(credential.client_id, credential.client_secret, archived);
    await signIn(app, name, `admin@${name}.test`);
    expect((await send(app, "DELETE", `/v1/apps/${name}`, admin)).status).toBe(200);
    const refused = await archived.token(credential.client_id, credential.client_secret);
    expect(refused.status).toBe(400);
    expect((await readJson(refused)).error.code).toBe("invalid_grant");
    const password = await send(app, "POST", `/v1/apps/${name}/tokens`, {
      body: { grant_type: "password", email: `admin@${name}.test`, password: PASSWORD },
    });
    expect(password.status).toBe(400);
    expect((await readJson(password)).error.message).toBe("The app is archived");
  });

  it("reads the database instead of trusting a hit when the revocation store cannot answer", async () => {
    const credential = await client.credential("store-down");
    const unreachable = () => Promise.reject(new Error("store unreachable"));
    const failing = countingSelects(opened.db);
    const { app: cut } = createTestApp({
      db: failing.port,
      clock,
      ports: {
        revocations: {
          revoke: unreachable,
          spend: unreachable,
          revokeIssuedBefore: unreachable,
          isRevoked: unreachable,
          revokedAmong: unreachable,
          ping: unreachable,
        },
      },
    });
    const onCut = clientOf(cut, appName);
    expect((await onCut.token(credential.client_id, credential.client_secret)).status).toBe(200);
    const before = failing.counter.selects;
    expect((await onCut.token(credential.client_id, credential.client_secret)).status).toBe(200);
    // The app and the credential, read again.
    expect(failing.counter.selects - before).toBe(2);
    expect(
      (await send(app, "DELETE", `/v1/apps/${appName}/credentials/${credential.id}`, admin)).status,
    ).toBe(200);
    expect((await onCut.token(credential.client_id, credential.client_secret)).status).toBe(401);
  });

  it("does not wait on a store that never answers: a hit reads the database within the check's budget", async () => {
    const credential = await client.credential("store-hangs");
    const hangs = () => new Promise<never>(() => {});
    const slow = countingSelects(opened.db);
    const { app: stalled } = createTestApp({
      db: slow.port,
      clock,
      ports: {
        revocations: {
          revoke: hangs,
          spend: hangs,
          revokeIssuedBefore: hangs,
          isRevoked: hangs,
          revokedAmong: hangs,
          ping: hangs,
        },
      },
    });
    const onStalled = clientOf(stalled, appName);
    expect((await onStalled.token(credential.client_id, credential.client_secret)).status).toBe(
      200,
    );
    const before = slow.counter.selects;
    const started = performance.now();
    expect((await onStalled.token(credential.client_id, credential.client_secret)).status).toBe(
      200,
    );
    // Two checks (app, credential) of at most 250 ms each, then both read again.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(slow.counter.selects - before).toBe(2);
  });

  it("makes concurrent misses of one client id one query", async () => {
    const credential = await client.credential("stampede");
    await warm(credential.client_id, credential.client_secret);
    await send(app, "PATCH", `/v1/apps/${appName}/credentials/${credential.id}`, {
      body: { name: "stampede-renamed" },
      ...admin,
    });
    clock.advance(5_000);
    const before = counter.selects;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.token(credential.client_id, credential.client_secret),
      ),
    );
    expect(answers.map((res) => res.status)).toEqual(Array(20).fill(200));
    expect(counter.selects - before).toBe(1);
  });
});

let upstash: UpstashRestServer | undefined;
const redisUrl = testServices.redis;
if (redisUrl) {
  beforeAll(async () => {
    upstash = await startUpstashRest({ redisUrl });
  });
  afterAll(() => upstash?.close());
} else {
  announceSkip("token caches across instances", "TEST_REDIS_URL");
}

describe.each(databaseBackends("token caches across instances"))(
  "token caches across two instances sharing an Upstash store, on $name",
  (backend) => {
    const clock = createTestClock();
    let opened: Awaited<ReturnType<typeof backend.open>>;
    let a: App;
    let b: App;
    let bCounter: { selects: number };
    const appName = "shared-tenant";

    beforeAll(async () => {
      if (!upstash) return;
      opened = await backend.open();
      const redis = createUpstashRedis({ url: upstash.url, token: upstash.token });
      const prefix = `heimdall-test:${crypto.randomUUID()}:revoked:`;
      const shared = (): Partial<Ports> => ({
        revocations: createRedisRevocationStore(redis, clock, { prefix }),
      });
      ({ app: a } = createTestApp({ db: opened.db, clock, ports: shared() }));
      const counting = countingSelects(opened.db);
      bCounter = counting.counter;
      ({ app: b } = createTestApp({ db: counting.port, clock, ports: shared() }));
      await createTenant(a, appName);
    });
    afterAll(() => opened?.dispose());
    beforeEach(({ skip }) => {
      if (!upstash) skip();
      clock.advance(5_000);
    });

    async function warmOnB(clientId: string, secret: string) {
      const onB = clientOf(b, appName);
      expect((await onB.token(clientId, secret)).status).toBe(200);
      const before = bCounter.selects;
      expect((await onB.token(clientId, secret)).status).toBe(200);
      expect(bCounter.selects - before, "B served the second request from its cache").toBe(0);
      return onB;
    }

    it("a credential revoked through A is refused by B on the next request", async () => {
      const credential = await clientOf(a, appName).credential("shared-revoked");
      const onB = await warmOnB(credential.client_id, credential.client_secret);
      const revoked = await send(
        a,
        "DELETE",
        `/v1/apps/${appName}/credentials/${credential.id}`,
        admin,
      );
      expect(revoked.status).toBe(200);
      const refused = await onB.token(credential.client_id, credential.client_secret);
      expect(refused.status).toBe(401);
      expect((await readJson(refused)).error.code).toBe("invalid_client");
    });

    it("a secret rotated through A is refused by B, and the new one accepted", async () => {
      const credential = await clientOf(a, appName).credential("shared-rotated");
      const onB = await warmOnB(credential.client_id, credential.client_secret);
      const rotated = await send(a, "PATCH", `/v1/apps/${appName}/credentials/${credential.id}`, {
        body: { rotate_secret: true, grace_period_seconds: 0 },
        ...admin,
      });
      const { client_secret: secret } = (await readBody(rotated, updateCredential, 200)).data;
      expect((await onB.token(credential.client_id, credential.client_secret)).status).toBe(401);
      expect((await onB.token(credential.client_id, secret as string)).status).toBe(200);
    });

    it("a setting changed through A applies to B's next token", async () => {
      const credential = await clientOf(a, appName).credential("shared-settings");
      const onB = await warmOnB(credential.client_id, credential.client_secret);
      const patched = await send(a, "PATCH", `/v1/apps/${appName}/settings`, {
        body: { access_token_ttl: 300 },
        ...admin,
      });
      expect(patched.status).toBe(200);
      const res = await onB.token(credential.client_id, credential.client_secret);
      expect((await readBody(res, issueToken, 200)).expires_in).toBe(300);
    });

    it("an app archived through A refuses B's next token request", async () => {
      const credential = await clientOf(a, appName).credential("shared-archived");
      const onB = await warmOnB(credential.client_id, credential.client_secret);
      expect((await send(a, "DELETE", `/v1/apps/${appName}`, admin)).status).toBe(200);
      const refused = await onB.token(credential.client_id, credential.client_secret);
      expect(refused.status).toBe(400);
      expect((await readJson(refused)).error.code).toBe("invalid_grant");
    });
  },
);

describe("verified access tokens", () => {
  const clock = createTestClock();
  let db: DatabasePort;
  let app: App;
  let services: ReturnType<typeof createTestApp>["services"];
  beforeAll(async () => {
    db = await createMemoryDatabase();
    ({ app, services } = createTestApp({ db, clock }));
  });
  afterAll(() => db.close());

  const authorize = async (token: string) =>
    readJson(
      await send(app, "POST", "/v1/authorize", { body: { token, permission: "projects:read" } }),
    );

  it("verifies a token's signature once, and refuses it when revoked, expired or altered", async () => {
    const tenant = await createTenant(app, "verified-tokens");
    const { accessToken } = tenant.reader;
    expect(services.verifiedTokens.get(accessToken)).toBeUndefined();
    expect(await authorize(accessToken)).toMatchObject({ allowed: true });
    expect(services.verifiedTokens.get(accessToken)?.claims.sub).toBe(tenant.reader.id);
    expect(await authorize(accessToken)).toMatchObject({ allowed: true });
    // The same token on a protected route, from the same entry.
    const me = await send(app, "GET", "/v1/users/me", { headers: bearer(accessToken) });
    expect(me.status).toBe(200);

    // Another signature is another string: verified, and refused.
    const [header, payload, signature = ""] = accessToken.split(".");
    const flipped = `${signature.startsWith("A") ? "B" : "A"}${signature.slice(1)}`;
    expect(await authorize(`${header}.${payload}.${flipped}`)).toMatchObject({
      allowed: false,
      reason: "invalid_signature",
    });

    // Revocation is looked up on every use.
    const deactivated = await send(
      app,
      "PATCH",
      `/v1/apps/verified-tokens/users/${tenant.reader.id}`,
      {
        body: { status: "deactivated" },
        headers: adminHeaders,
      },
    );
    expect(deactivated.status).toBe(200);
    expect(await authorize(accessToken)).toMatchObject({ allowed: false, reason: "token_revoked" });

    // Expiry is checked against the request's clock, and an expired token leaves the cache.
    const admin = tenant.admin.accessToken;
    expect(await authorize(admin)).toMatchObject({ allowed: true });
    expect(services.verifiedTokens.get(admin)).toBeDefined();
    clock.advance(3600_000 + 6_000);
    expect(await authorize(admin)).toMatchObject({ allowed: false, reason: "token_expired" });
    expect(services.verifiedTokens.get(admin)).toBeUndefined();
  });
});

describe("writers of cached records", () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const sources = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return sources(path);
      return path.endsWith(".ts") ? [path] : [];
    });
  const WRITE =
    /\.(?:update|delete)\(\s*(?:apps|serviceCredentials)\s*\)|\b(?:update|delete\s+from)\s+(?:\$\{(?:apps|serviceCredentials)\}|"?(?:apps|service_credentials)\b)/gi;
  const enclosing = (text: string, at: number) => {
    const names = [...text.slice(0, at).matchAll(/\bfunction\s+(\w+)|\basync\s+(\w+)\s*\(/g)];
    const last = names.at(-1);
    return last?.[1] ?? last?.[2] ?? "(top level)";
  };

  it("only the helpers that invalidate the caches write apps and service credentials", () => {
    const writers = ["src", "party", "functions", "scripts"].flatMap((dir) =>
      sources(join(root, dir)).flatMap((path) => {
        const text = readFileSync(path, "utf8");
        return [...text.matchAll(WRITE)].map(
          (match) => `${relative(root, path)}: ${enclosing(text, match.index)}`,
        );
      }),
    );
    expect(writers.sort()).toEqual([
      "src/services/apps.ts: changeApp",
      // last_used_at only: no cached field.
      "src/services/credential-usage.ts: flush",
      "src/services/credentials.ts: changeCredential",
    ]);
    for (const [file, helper, cache] of [
      ["src/services/apps.ts", "changeApp", "appsByName"],
      ["src/services/credentials.ts", "changeCredential", "credentialsByClientId"],
    ] as const) {
      const text = readFileSync(join(root, file), "utf8");
      const body = text.slice(text.indexOf(`function ${helper}(`));
      expect(body.slice(0, body.indexOf("\n}\n"))).toContain(`ctx.${cache}.changed(`);
    }
  });
});
