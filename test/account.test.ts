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
