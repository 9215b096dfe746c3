import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, signIn } from "./support/identity";

let db: DatabasePort;
let app: App;
const clock = createTestClock();
beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app } = createTestApp({ db, clock }));
});
afterAll(() => db.close());

const admin = { headers: adminHeaders };

describe("users and roles", () => {
  it("assigns and removes roles, and the next token carries the change", async () => {
    const tenant = await createTenant(app, "juliet");
    const writer = await send(app, "POST", "/v1/roles", {
      body: { name: "writer", permissions: ["projects:write", "gps:*"] },
      headers: bearer(tenant.admin.accessToken),
    });
    expect(writer.status).toBe(201);
    const assigned = await send(app, "POST", `/v1/users/${tenant.reader.id}/roles`, {
      body: { role: "writer" },
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(assigned)).data.roles).toEqual(["reader", "writer"]);
    const { accessToken } = await signIn(app, "juliet", tenant.reader.email);
    const decision = await readJson(
      await send(app, "POST", "/v1/authorize", {
        body: { token: accessToken, permission: "gps:read" },
      }),
    );
    expect(decision).toMatchObject({
      allowed: true,
      permissions: ["gps:*", "projects:read", "projects:write"],
    });
    const removed = await send(app, "DELETE", `/v1/users/${tenant.reader.id}/roles/writer`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(removed)).data.roles).toEqual(["reader"]);
    const audit = await readJson(
      await send(app, "GET", `/v1/audit-logs?target_id=${tenant.reader.id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    expect(audit.data.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(["role.assigned", "role.removed"]),
    );
    const one = await send(app, "GET", `/v1/audit-logs/${audit.data[0].id}`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(one)).data).toMatchObject({
      id: audit.data[0].id,
      app_id: tenant.app.id,
    });
  });

  it("lists the permission catalogue and answers /v1/users/me and /v1/auth/validate", async () => {
    const tenant = await createTenant(app, "kilo");
    const catalogue = await readJson(
      await send(app, "GET", "/v1/permissions", { headers: bearer(tenant.admin.accessToken) }),
    );
    expect(catalogue.data.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["users:read", "gps:read", "devices:write"]),
    );
    const me = await readJson(
      await send(app, "GET", "/v1/users/me", { headers: bearer(tenant.reader.accessToken) }),
    );
    expect(me.data).toMatchObject({
      id: tenant.reader.id,
      email: tenant.reader.email,
      roles: ["reader"],
    });
    const valid = await readJson(
      await send(app, "POST", "/v1/auth/validate", { body: { token: tenant.reader.accessToken } }),
    );
    expect(valid).toEqual({
      valid: true,
      user: {
        id: tenant.reader.id,
        email: tenant.reader.email,
        role: "reader",
        roles: ["reader"],
        app_id: tenant.app.id,
      },
    });
    expect(
      await readJson(await send(app, "POST", "/v1/auth/validate", { body: { token: "nope" } })),
    ).toEqual({ valid: false, reason: "malformed_token" });
    await expectError(await send(app, "GET", "/v1/users/me", admin), 403, "forbidden");
  });
});
