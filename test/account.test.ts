import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, GeoIp } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, signIn, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
let logs: Array<{ level: string; message: string }>;
const located: Array<string | null | undefined> = [];
/** A GeoIP that knows one address, and records what it was asked. */
const geoip: GeoIp = {
  locate(ip) {
    located.push(ip);
    return ip === "81.2.69.142"
      ? { city: "London", country: "United Kingdom", country_code: "GB" }
      : null;
  },
};

beforeAll(async () => {
  db = await createMemoryDatabase();
  const instance = createTestApp({ db, ports: { geoip } });
  app = instance.app;
  logs = instance.logs;
  tenant = await createTenant(app, "privacy");
});
afterAll(() => db.close());

const as = (token: string) => bearer(token);

describe("activity and GeoIP", () => {
  it("locates sign-ins and audit events, and logs them without a location when unknown", async () => {
    const fromLondon = await send(app, "POST", "/v1/apps/privacy/tokens", {
      body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
      headers: { "x-test-client-ip": "81.2.69.142" },
    });
    expect(fromLondon.status).toBe(200);
    const token = (await readJson(fromLondon)).access_token;
    await send(app, "POST", "/v1/apps/privacy/tokens", {
      body: { grant_type: "password", email: tenant.reader.email, password: "wrong" },
      headers: { "x-test-client-ip": "192.0.2.1" },
    });
    const activity = await readJson(
      await send(app, "GET", "/v1/users/me/audit?limit=100", { headers: as(token) }),
    );
    const login = activity.data.find(
      (e: { action: string; ip_address: string }) =>
        e.action === "auth.login.succeeded" && e.ip_address === "81.2.69.142",
    );
    expect(login.location).toEqual({
      city: "London",
      country: "United Kingdom",
      country_code: "GB",
    });
    const failed = activity.data.find((e: { action: string }) => e.action === "auth.login.failed");
    expect(failed).toMatchObject({ ip_address: "192.0.2.1", location: null });
    // Only their own: nothing by or about the admin user.
    for (const event of activity.data) {
      expect([event.actor_id, event.target_id]).not.toContain(tenant.admin.id);
    }
    const sessions = await readJson(
      await send(app, "GET", "/v1/users/me/sessions", { headers: as(token) }),
    );
    const current = sessions.data.find((s: { current: boolean }) => s.current);
    expect(current.location).toMatchObject({ city: "London" });
  });
});

describe("audit reports", () => {
  it("creates a report over a period and filters, lists it, and downloads it as CSV and JSON", async () => {
    await send(app, "POST", "/v1/apps/privacy/tokens", {
      body: { grant_type: "password", email: tenant.admin.email, password: "wrong" },
      headers: { "user-agent": "=cmd|' /C calc'!A0" },
    });
    const created = await send(app, "POST", "/v1/admin/audit/reports", {
      body: {
        name: "failed sign-ins",
        from: "2000-01-01T00:00:00Z",
        to: "2100-01-01T00:00:00Z",
        app: "privacy",
        actions: ["auth.login.failed"],
      },
      headers: adminHeaders,
    });
    expect(created.status).toBe(201);
    const report = (await readJson(created)).data;
    expect(report.event_count).toBe(2);
    expect(report.filters).toEqual({ actions: ["auth.login.failed"] });

    const list = await readJson(
      await send(app, "GET", "/v1/admin/audit/reports", { headers: adminHeaders }),
    );
    expect(list.data.map((r: { id: string }) => r.id)).toContain(report.id);
    const one = await send(app, "GET", `/v1/admin/audit/reports/${report.id}`, {
      headers: adminHeaders,
    });
    expect((await readJson(one))._links.csv).toContain(
      `/v1/admin/audit/reports/${report.id}/download`,
    );

    const csv = await send(app, "GET", `/v1/admin/audit/reports/${report.id}/download?format=csv`, {
      headers: adminHeaders,
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    const lines = (await csv.text()).trimEnd().split("\r\n");
    expect(lines[0]).toBe(
      "id,timestamp,app_id,actor_type,actor_id,action,target_type,target_id,ip_address,user_agent,location,metadata",
    );
    expect(lines).toHaveLength(3);
    expect(lines.slice(1).every((line) => line.includes("auth.login.failed"))).toBe(true);
    // A cell a spreadsheet would run as a formula is defused.
    expect(lines.some((line) => line.includes(",'=cmd|' /C calc'!A0,"))).toBe(true);

    const json = await send(
      app,
      "GET",
      `/v1/admin/audit/reports/${report.id}/download?format=json`,
      {
        headers: adminHeaders,
      },
    );
    const events = await readJson(json);
    expect(events).toHaveLength(2);
    expect(events.map((e: { action: string }) => e.action)).toEqual([
      "auth.login.failed",
      "auth.login.failed",
    ]);
    expect(Date.parse(events[0].timestamp)).toBeLessThanOrEqual(Date.parse(events[1].timestamp));

    await expectError(
      await send(app, "GET", "/v1/admin/audit/reports", { headers: as(tenant.admin.accessToken) }),
      403,
      "forbidden",
    );
    await expectError(
      await send(app, "POST", "/v1/admin/audit/reports", {
        body: { name: "x", from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z" },
        headers: adminHeaders,
      }),
      400,
      "validation_error",
    );
  });
});

describe("GDPR export and erasure", () => {
  let user: { id: string; email: string; accessToken: string };
  let device: { id: string; secret: string };

  beforeAll(async () => {
    const email = "erin@privacy.test";
    const created = await send(app, "POST", "/v1/apps/privacy/users", {
      body: { email, password: PASSWORD, role: "admin", display_name: "Erin" },
      headers: adminHeaders,
    });
    const id = (await readJson(created)).data.id;
    user = { id, email, ...(await signIn(app, "privacy", email)) };
    device = (
      await readJson(
        await send(app, "POST", "/v1/devices", {
          body: { name: "Erin's phone" },
          headers: as(user.accessToken),
        }),
      )
    ).data;
    const points = Array.from({ length: 30 }, (_, i) => ({
      timestamp: new Date(Date.UTC(2025, 10, 1, 8, i)).toISOString(),
      latitude: 50 + i / 100,
      longitude: 8,
    }));
    const posted = await send(app, "POST", "/v1/gps/batch", {
      body: { points },
      headers: bearer(device.secret),
    });
    expect((await readJson(posted)).data.stored).toBe(30);
  });

  it("exports everything stored about the caller as one JSON document", async () => {
    const res = await send(app, "GET", "/v1/user/export", { headers: as(user.accessToken) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-disposition")).toContain(`heimdall-export-${user.id}.json`);
    const exported = await readJson(res);
    expect(exported.user).toMatchObject({ id: user.id, email: user.email, display_name: "Erin" });
    expect(exported.user.password_hash).toBeUndefined();
    expect(exported.sessions.length).toBeGreaterThanOrEqual(1);
    expect(
      exported.audit_events.some((e: { action: string }) => e.action === "auth.login.succeeded"),
    ).toBe(true);
    expect(exported.devices).toHaveLength(1);
    expect(exported.devices[0]).toMatchObject({ id: device.id, owner_id: user.id });
    expect(exported.devices[0].positions).toHaveLength(30);
    expect(exported.devices[0].positions[29].latitude).toBeCloseTo(50.29);
    expect(JSON.stringify(exported)).not.toMatch(/secret_hash|password_hash|token_hash/);
    // Another user's export has none of it.
    const other = await readJson(
      await send(app, "GET", "/v1/user/export", { headers: as(tenant.reader.accessToken) }),
    );
    expect(other.devices).toEqual([]);
  });

  it("erases the caller's personal data and positions, keeping a pseudonymized audit trail", async () => {
    await expectError(
      await send(app, "DELETE", "/v1/users/me", {
        body: { password: "nope" },
        headers: as(user.accessToken),
      }),
      403,
      "forbidden",
    );
    const erased = await send(app, "DELETE", "/v1/users/me", {
      body: { password: PASSWORD },
      headers: as(user.accessToken),
    });
    expect(erased.status, JSON.stringify(logs.filter((l) => l.level === "error"))).toBe(200);
    expect((await readJson(erased)).data).toEqual({ erased: true, devices: 1, positions: 30 });

    // The token is dead, the account gone, the device and its positions gone.
    await expectError(
      await send(app, "GET", "/v1/users/me", { headers: as(user.accessToken) }),
      401,
      "unauthorized",
    );
    const admin = as(tenant.admin.accessToken);
    await expectError(
      await send(app, "GET", `/v1/devices/${device.id}`, { headers: admin }),
      404,
      "not_found",
    );
    const history = await readJson(
      await send(app, "GET", `/v1/gps?device_id=${device.id}`, { headers: admin }),
    );
    expect(history.pagination.total).toBe(0);

    // The trail keeps its events, under a pseudonym, without addresses or the email.
    const trail = await readJson(
      await send(app, "GET", "/v1/audit-logs?limit=100", { headers: admin }),
    );
    const text = JSON.stringify(trail);
    expect(text).not.toContain(user.id);
    expect(text.toLowerCase()).not.toContain(user.email);
    const erasedEvent = trail.data.find((e: { action: string }) => e.action === "user.erased");
    expect(erasedEvent.actor_id).toMatch(/^usr_erased_/);
    const theirs = trail.data.filter(
      (e: { actor_id: string }) => e.actor_id === erasedEvent.actor_id,
    );
    expect(theirs.map((e: { action: string }) => e.action)).toEqual(
      expect.arrayContaining(["user.erased", "auth.login.succeeded", "device.created"]),
    );
    expect(
      theirs.every(
        (e: { ip_address: null; user_agent: null }) =>
          e.ip_address === null && e.user_agent === null,
      ),
    ).toBe(true);
    // The account is gone: signing in fails like an unknown email.
    await expectError(
      await send(app, "POST", "/v1/apps/privacy/tokens", {
        body: { grant_type: "password", email: user.email, password: PASSWORD },
      }),
      400,
      "invalid_grant",
    );
  });
});
