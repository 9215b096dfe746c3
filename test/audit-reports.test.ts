import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import {
  createReport,
  getReport,
  listReports,
} from "../src/routes/audit-reports/audit-reports.routes";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readBody, readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;

beforeAll(async () => {
  db = await createMemoryDatabase();
  app = createTestApp({ db }).app;
  tenant = await createTenant(app, "privacy");
  // A failed sign-in of another user before the test's own: the report counts both.
  await send(app, "POST", "/v1/apps/privacy/tokens", {
    body: { grant_type: "password", email: tenant.reader.email, password: "wrong" },
    headers: { "x-test-client-ip": "192.0.2.1" },
  });
});
afterAll(() => db.close());

const as = (token: string) => bearer(token);

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
    const report = (await readBody(created, createReport, 201)).data;
    expect(report.event_count).toBe(2);
    expect(report.filters).toEqual({ actions: ["auth.login.failed"] });

    const list = await readBody(
      await send(app, "GET", "/v1/admin/audit/reports", { headers: adminHeaders }),
      listReports,
      200,
    );
    expect(list.data.map((r: { id: string }) => r.id)).toContain(report.id);
    const one = await send(app, "GET", `/v1/admin/audit/reports/${report.id}`, {
      headers: adminHeaders,
    });
    expect((await readBody(one, getReport, 200))._links.csv).toContain(
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
