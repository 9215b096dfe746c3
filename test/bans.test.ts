import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { listAuditLogs } from "../src/routes/audit/audit.routes";
import { createBan, getBan, liftBan, listBans } from "../src/routes/bans/bans.routes";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readBody } from "./support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
const admin = { headers: adminHeaders };

beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app } = createTestApp({ db }));
  tenant = await createTenant(app, "whiskey");
});
afterAll(() => db.close());

describe("bans", () => {
  it("bans a user: no tokens, live ones stop; lifting lets them sign in again", async () => {
    const created = await send(app, "POST", "/v1/admin/bans", {
      body: { user_id: tenant.reader.id, reason: "abuse" },
      ...admin,
    });
    expect(created.status).toBe(201);
    const ban = (await readBody(created, createBan, 201)).data;
    expect(ban).toMatchObject({
      kind: "user",
      user_id: tenant.reader.id,
      app_id: tenant.app.id,
      reason: "abuse",
    });
    expect(ban.id).toMatch(/^ban_/);

    await expectError(
      await send(app, "GET", "/v1/users/me", { headers: bearer(tenant.reader.accessToken) }),
      401,
      "unauthorized",
    );
    const login = () =>
      send(app, "POST", "/v1/apps/whiskey/tokens", {
        body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
      });
    await expectError(await login(), 400, "invalid_grant");
    await expectError(
      await send(app, "POST", "/v1/apps/whiskey/tokens/refresh", {
        body: { refresh_token: tenant.reader.refreshToken },
      }),
      400,
      "invalid_grant",
    );

    const listed = await readBody(
      await send(app, "GET", "/v1/admin/bans?active=true", admin),
      listBans,
      200,
    );
    expect(listed.data.map((b: { id: string }) => b.id)).toContain(ban.id);
    expect(
      (await readBody(await send(app, "GET", `/v1/admin/bans/${ban.id}`, admin), getBan, 200)).data
        .id,
    ).toBe(ban.id);

    const lifted = await readBody(
      await send(app, "DELETE", `/v1/admin/bans/${ban.id}`, admin),
      liftBan,
      200,
    );
    expect(lifted.data.lifted_at).not.toBeNull();
    expect((await login()).status).toBe(200);
    const audit = await readBody(
      await send(app, "GET", `/v1/apps/whiskey/audit-logs?target_id=${tenant.reader.id}`, admin),
      listAuditLogs,
      200,
    );
    expect(audit.data.map((e: { action: string }) => e.action)).toContain("ban.created");
  });

  it("answers a banned address or range 403 before anything else", async () => {
    const from = (ip: string) => ({ headers: { "X-Test-Client-Ip": ip } });
    expect((await app.request("/v1", from("203.0.113.9"))).status).toBe(200);
    const range = await send(app, "POST", "/v1/admin/bans", {
      body: { ip: "203.0.113.0/24", reason: "botnet" },
      ...admin,
    });
    expect((await readBody(range, createBan, 201)).data).toMatchObject({
      kind: "ip",
      cidr: "203.0.113.0/24",
    });
    await expectError(await app.request("/v1", from("203.0.113.9")), 403, "forbidden");
    await expectError(
      await app.request("/v1/nonexistent", from("203.0.113.200")),
      403,
      "forbidden",
    );
    expect((await app.request("/v1", from("203.0.114.1"))).status).toBe(200);
    // IPv4-mapped IPv6, as Node reports some sockets.
    await expectError(await app.request("/v1", from("::ffff:203.0.113.5")), 403, "forbidden");

    const single = await readBody(
      await send(app, "POST", "/v1/admin/bans", {
        body: { ip: "2001:db8::1", reason: "x" },
        ...admin,
      }),
      createBan,
      201,
    );
    expect(single.data.cidr).toBe("2001:db8::1/128");
    await expectError(await app.request("/v1", from("2001:db8::1")), 403, "forbidden");
    expect((await app.request("/v1", from("2001:db8::2"))).status).toBe(200);
  });

  it("refuses bad bans", async () => {
    for (const body of [
      { ip: "not-an-ip", reason: "x" },
      { reason: "nothing to ban" },
      { ip: "10.0.0.1", user_id: tenant.admin.id, reason: "both" },
    ]) {
      await expectError(
        await send(app, "POST", "/v1/admin/bans", { body, ...admin }),
        400,
        "validation_error",
      );
    }
    await expectError(
      await send(app, "POST", "/v1/admin/bans", {
        body: { user_id: "usr_nope", reason: "x" },
        ...admin,
      }),
      404,
      "not_found",
    );
    await expectError(
      await send(app, "GET", "/v1/admin/bans", { headers: bearer(tenant.admin.accessToken) }),
      403,
      "forbidden",
    );
  });
});
