import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort, GeoIp } from "../src/ports";
import { activity as activityRoute } from "../src/routes/account/account.routes";
import { issueToken } from "../src/routes/tokens/tokens.routes";
import { listSessions } from "../src/routes/users/users.routes";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { readBody } from "./support/http";
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
    const token = (await readBody(fromLondon, issueToken, 200)).access_token;
    await send(app, "POST", "/v1/apps/privacy/tokens", {
      body: { grant_type: "password", email: tenant.reader.email, password: "wrong" },
      headers: { "x-test-client-ip": "192.0.2.1" },
    });
    const activity = await readBody(
      await send(app, "GET", "/v1/users/me/audit?limit=100", { headers: as(token) }),
      activityRoute,
      200,
    );
    const login = activity.data.find(
      (e) => e.action === "auth.login.succeeded" && e.ip_address === "81.2.69.142",
    );
    expect(login!.location).toEqual({
      city: "London",
      country: "United Kingdom",
      country_code: "GB",
    });
    const failed = activity.data.find((e) => e.action === "auth.login.failed");
    expect(failed).toMatchObject({ ip_address: "192.0.2.1", location: null });
    // Only their own: nothing by or about the admin user.
    for (const event of activity.data) {
      expect([event.actor_id, event.target_id]).not.toContain(tenant.admin.id);
    }
    const sessions = await readBody(
      await send(app, "GET", "/v1/users/me/sessions", { headers: as(token) }),
      listSessions,
      200,
    );
    const current = sessions.data.find((s) => s.current);
    expect(current!.location).toMatchObject({ city: "London" });
  });
});
