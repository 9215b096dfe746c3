import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { createDevice, getDevice, rotateSecret } from "../src/routes/devices/devices.routes";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readBody } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;

beforeAll(async () => {
  db = await createMemoryDatabase();
  app = createTestApp({ db }).app;
  tenant = await createTenant(app, "yankee");
});
afterAll(() => db.close());

async function newDevice(name: string, body: Record<string, unknown> = {}) {
  const res = await send(app, "POST", "/v1/devices", {
    body: { name, ...body },
    headers: bearer(tenant.admin.accessToken),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await readBody(res, createDevice, 201)).data;
}

describe("devices", () => {
  it("answers the secret once; it can be rotated, and the old one stops working", async () => {
    const device = await newDevice("phone", { external_id: "abc", expected_interval_seconds: 60 });
    expect(device.secret).toMatch(/^dk_/);
    const got = await readBody(
      await send(app, "GET", `/v1/devices/${device.id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
      getDevice,
      200,
    );
    expect(got.data).toMatchObject({ name: "phone", external_id: "abc", status: "unknown" });
    expect(JSON.stringify(got)).not.toContain(device.secret);
    await expectError(
      await send(app, "POST", "/v1/devices", {
        body: { name: "dup", external_id: "abc" },
        headers: bearer(tenant.admin.accessToken),
      }),
      409,
      "conflict",
    );
    const rotated = await readBody(
      await send(app, "POST", `/v1/apps/yankee/devices/${device.id}/secret`, {
        headers: adminHeaders,
      }),
      rotateSecret,
      200,
    );
    expect(rotated.data.secret).not.toBe(device.secret);
    const point = { timestamp: "2025-11-22T08:00:00Z", latitude: 1, longitude: 2 };
    await expectError(
      await send(app, "POST", "/v1/gps", { body: point, headers: bearer(device.secret) }),
      401,
      "unauthorized",
    );
    expect(
      (await send(app, "POST", "/v1/gps", { body: point, headers: bearer(rotated.data.secret) }))
        .status,
    ).toBe(201);
  });
});
