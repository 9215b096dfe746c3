import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { getAuditLog, listAuditLogs } from "../src/routes/audit/audit.routes";
import { listPermissions } from "../src/routes/roles/roles.routes";
import { authorize, validateToken } from "../src/routes/tokens/tokens.routes";
import { assignRole, getMe, removeRole } from "../src/routes/users/users.routes";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readBody } from "./support/http";
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
    expect((await readBody(assigned, assignRole, 200)).data.roles).toEqual(["reader", "writer"]);
    const { accessToken } = await signIn(app, "juliet", tenant.reader.email);
    const decision = await readBody(
      await send(app, "POST", "/v1/authorize", {
        body: { token: accessToken, permission: "gps:read" },
      }),
      authorize,
      200,
    );
    expect(decision).toMatchObject({
      allowed: true,
      permissions: ["gps:*", "projects:read", "projects:write"],
    });
    const removed = await send(app, "DELETE", `/v1/users/${tenant.reader.id}/roles/writer`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readBody(removed, removeRole, 200)).data.roles).toEqual(["reader"]);
    const audit = await readBody(
      await send(app, "GET", `/v1/audit-logs?target_id=${tenant.reader.id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
      listAuditLogs,
      200,
    );
    expect(audit.data.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(["role.assigned", "role.removed"]),
    );
    const one = await send(app, "GET", `/v1/audit-logs/${audit.data[0]!.id}`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readBody(one, getAuditLog, 200)).data).toMatchObject({
      id: audit.data[0]!.id,
      app_id: tenant.app.id,
    });
  });

  it("lists the permission catalogue and answers /v1/users/me and /v1/auth/validate", async () => {
    const tenant = await createTenant(app, "kilo");
    const catalogue = await readBody(
      await send(app, "GET", "/v1/permissions", { headers: bearer(tenant.admin.accessToken) }),
      listPermissions,
      200,
    );
    expect(catalogue.data.map((p: { name: string }) => p.name)).toEqual(
      expect.arrayContaining(["users:read", "gps:read", "devices:write"]),
    );
    const me = await readBody(
      await send(app, "GET", "/v1/users/me", { headers: bearer(tenant.reader.accessToken) }),
      getMe,
      200,
    );
    expect(me.data).toMatchObject({
      id: tenant.reader.id,
      email: tenant.reader.email,
      roles: ["reader"],
    });
    const valid = await readBody(
      await send(app, "POST", "/v1/auth/validate", { body: { token: tenant.reader.accessToken } }),
      validateToken,
      200,
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
      await readBody(
        await send(app, "POST", "/v1/auth/validate", { body: { token: "nope" } }),
        validateToken,
        200,
      ),
    ).toEqual({ valid: false, reason: "malformed_token" });
    await expectError(await send(app, "GET", "/v1/users/me", admin), 403, "forbidden");
  });
});
