import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import {
  createApiKey,
  getApiKey,
  listApiKeys,
  revokeApiKey,
} from "../src/routes/api-keys/api-keys.routes";
import { authorize } from "../src/routes/tokens/tokens.routes";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  withExecutionContext,
} from "./support/app";
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

describe("API keys", () => {
  it("shows the secret once, and it works as Bearer and as X-API-Key within its role", async () => {
    const created = await send(app, "POST", "/v1/api-keys", {
      body: { name: "dashboard", role: "api-read-only" },
      headers: bearer(tenant.admin.accessToken),
    });
    expect(created.status).toBe(201);
    const key = (await readBody(created, createApiKey, 201)).data;
    expect(key).toMatchObject({ name: "dashboard", role: "api-read-only", app_id: tenant.app.id });
    expect(key.key).toMatch(/^pk_[A-Za-z0-9_-]{43}$/);
    expect(key.id).toMatch(/^key_/);

    const listed = await readBody(
      await send(app, "GET", "/v1/apps/papa/api-keys", admin),
      listApiKeys,
      200,
    );
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
    const decision = await readBody(
      await send(app, "POST", "/v1/authorize", {
        body: { token: key.key, permission: "users:read" },
      }),
      authorize,
      200,
    );
    expect(decision).toEqual({
      allowed: true,
      subject: key.id,
      app: tenant.app.id,
      permissions: ["*:read"],
    });
  });

  it("is refused at once when revoked, and once expired", async () => {
    const full = await readBody(
      await send(app, "POST", "/v1/apps/papa/api-keys", {
        body: { name: "ci", role: "api-full-access" },
        ...admin,
      }),
      createApiKey,
      201,
    );
    const key = full.data.key;
    expect(
      (
        await send(app, "POST", "/v1/roles", {
          body: { name: "ci-made", permissions: [] },
          headers: bearer(key),
        })
      ).status,
    ).toBe(201);
    const revoked = await send(app, "DELETE", `/v1/apps/papa/api-keys/${full.data.id}`, admin);
    expect((await readBody(revoked, revokeApiKey, 200)).data.revoked_at).not.toBeNull();
    await expectError(
      await send(app, "GET", "/v1/users", { headers: bearer(key) }),
      401,
      "unauthorized",
    );
    const decision = await readBody(
      await send(app, "POST", "/v1/authorize", { body: { token: key, permission: "users:read" } }),
      authorize,
      200,
    );
    expect(decision).toMatchObject({ allowed: false, reason: "invalid_token" });

    const shortLived = await readBody(
      await send(app, "POST", "/v1/apps/papa/api-keys", {
        body: {
          name: "temp",
          role: "api-read-only",
          expires_at: new Date(clock.now().getTime() + 60_000).toISOString(),
        },
        ...admin,
      }),
      createApiKey,
      201,
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
    const created = await readBody(
      await send(app, "POST", "/v1/apps/papa/api-keys", {
        body: { name: "usage", role: "api-read-only" },
        ...admin,
      }),
      createApiKey,
      201,
    );
    const get = async () =>
      (
        await readBody(
          await send(app, "GET", `/v1/apps/papa/api-keys/${created.data.id}`, admin),
          getApiKey,
          200,
        )
      ).data;
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
