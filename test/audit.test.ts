import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, GeoIp } from "../src/ports";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
/** A GeoIP that knows one address. */
const geoip: GeoIp = {
  locate: (ip) =>
    ip === "81.2.69.142" ? { city: "London", country: "United Kingdom", country_code: "GB" } : null,
};

beforeAll(async () => {
  db = await createMemoryDatabase();
  app = createTestApp({ db, ports: { geoip } }).app;
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
