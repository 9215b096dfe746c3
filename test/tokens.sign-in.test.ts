import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, Ports } from "../src/ports";
import type { Services } from "../src/services/context";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readJson } from "./support/http";
import { createTenant, send, signIn } from "./support/identity";

let db: DatabasePort;
let app: App;
let ports: Ports;
let services: Services;
const clock = createTestClock();
beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app, ports, services } = createTestApp({ db, clock }));
});
afterAll(() => db.close());

const admin = { headers: adminHeaders };

describe("sign-in and refresh", () => {
  it("answers a wrong password and an unknown email alike, and audits both", async () => {
    const tenant = await createTenant(app, "lima");
    for (const email of [tenant.reader.email, "nobody@lima.test"]) {
      const res = await send(app, "POST", "/v1/apps/lima/tokens", {
        body: { grant_type: "password", email, password: "wrong password!" },
      });
      const body = await expectError(res, 400, "invalid_grant");
      expect(body.error.message).toBe("Invalid email or password");
    }
    const failed = await readJson(
      await send(app, "GET", "/v1/apps/lima/audit-logs?action=auth.login.failed", admin),
    );
    expect(
      failed.data.map((e: { metadata: { reason: string } }) => e.metadata.reason).sort(),
    ).toEqual(["unknown_user", "wrong_password"]);
    await expectError(
      await send(app, "POST", "/v1/apps/lima/tokens", { body: { grant_type: "magic" } }),
      400,
      "unsupported_grant_type",
    );
    await expectError(
      await send(app, "POST", "/v1/apps/lima/tokens", { body: { grant_type: "password" } }),
      400,
      "invalid_request",
    );
  });

  it("gives parallel tabs the same successor within the reuse interval, and kills the family after", async () => {
    const tenant = await createTenant(app, "mike");
    await send(app, "PATCH", "/v1/apps/mike/settings", {
      body: { refresh_reuse_interval: 30 },
      ...admin,
    });
    const { refreshToken } = await signIn(app, "mike", tenant.reader.email);
    const refresh = (token: string) =>
      send(app, "POST", "/v1/apps/mike/tokens/refresh", { body: { refresh_token: token } });
    const [first, second] = await Promise.all([refresh(refreshToken), refresh(refreshToken)]);
    expect([first.status, second.status]).toEqual([200, 200]);
    const successorA = (await readJson(first)).refresh_token;
    const successorB = (await readJson(second)).refresh_token;
    expect(successorA).toBe(successorB);
    expect(successorA).not.toBe(refreshToken);

    clock.advance(31_000);
    await expectError(await refresh(refreshToken), 400, "invalid_grant");
    await expectError(await refresh(successorA), 400, "invalid_grant");
  });
});

describe("the hot path", () => {
  it("authorizes and verifies with no database read once the key is cached", async () => {
    const tenant = await createTenant(app, "november");
    const warm = await send(app, "POST", "/v1/authorize", {
      body: { token: tenant.reader.accessToken, permission: "projects:read" },
    });
    expect((await readJson(warm)).allowed).toBe(true);
    let opened = 0;
    const counting: DatabasePort = {
      ...db,
      session: () => {
        opened += 1;
        return db.session();
      },
    };
    const { app: observed } = createTestApp({
      db: counting,
      ports: { clock: ports.clock },
      services: { keys: services.keys },
    });
    const res = await send(observed, "POST", "/v1/authorize", {
      body: { token: tenant.reader.accessToken, permission: "projects:read" },
    });
    expect((await readJson(res)).allowed).toBe(true);
    expect(opened).toBe(0);
  });
});
