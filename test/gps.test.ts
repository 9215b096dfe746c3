import { readFileSync } from "node:fs";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { createMemoryRealtime } from "../src/adapters/memory/realtime";
import type { App } from "../src/app";
import { auditLogs, devices } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

interface Fixture {
  method: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  expect: Record<string, unknown> & { status: number; body?: unknown };
}
const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(new URL(`./fixtures/devices/${name}.json`, import.meta.url), "utf8"));

let db: DatabasePort;
let app: App;
let realtime: ReturnType<typeof createMemoryRealtime>;
let tenant: Tenant;

beforeAll(async () => {
  db = await createMemoryDatabase();
  const instance = createTestApp({ db });
  app = instance.app;
  realtime = instance.ports.realtime as typeof realtime;
  tenant = await createTenant(app, "yankee");
});
afterAll(() => db.close());

async function newDevice(name: string, body: Record<string, unknown> = {}) {
  const res = await send(app, "POST", "/v1/devices", {
    body: { name, ...body },
    headers: bearer(tenant.admin.accessToken),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await readJson(res)).data as { id: string; secret: string; external_id: string | null };
}

async function deviceRow(deviceId: string) {
  const [row] = await db.session().db.select().from(devices).where(eq(devices.id, deviceId));
  return row;
}

async function latestOf(deviceId: string) {
  const current = await readJson(
    await send(app, "GET", "/v1/gps/current", { headers: bearer(tenant.admin.accessToken) }),
  );
  return current.data.find((p: { device_id: string }) => p.device_id === deviceId);
}

async function countOf(deviceId: string) {
  const page = await readJson(
    await send(app, "GET", `/v1/gps?device_id=${deviceId}`, {
      headers: bearer(tenant.admin.accessToken),
    }),
  );
  return page.pagination.total as number;
}

describe("tracker apps, posting as they do", () => {
  it("OsmAnd / Traccar Client (classic): GET with the secret in the URL, speed in knots", async () => {
    const f = fixture("osmand");
    const device = await newDevice("osmand");
    const query = new URLSearchParams({ key: device.secret, ...f.query });
    const res = await app.request(`/v1/gps/osmand?${query}`);
    expect(res.status).toBe(f.expect.status);
    const position = await latestOf(device.id);
    expect(position).toMatchObject({
      latitude: f.expect.latitude,
      longitude: f.expect.longitude,
      speed: f.expect.speed_mps,
      timestamp: new Date(f.expect.timestamp as string).toISOString(),
      heading: 87.5,
      battery: 76,
    });
    // Retried by the app: stored once.
    expect((await app.request(`/v1/gps/osmand?${query}`)).status).toBe(200);
    expect(await countOf(device.id)).toBe(1);
    // The tracker's own id is kept as the device's external id.
    const got = await readJson(
      await send(app, "GET", `/v1/devices/${device.id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    expect(got.data.external_id).toBe(f.query?.id);
  });

  it("Traccar Client (JSON body)", async () => {
    const f = fixture("traccar-json");
    const device = await newDevice("traccar");
    const res = await app.request(`/v1/gps/osmand?key=${device.secret}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(f.body),
    });
    expect(res.status, await res.clone().text()).toBe(f.expect.status);
    expect(await latestOf(device.id)).toMatchObject({
      latitude: f.expect.latitude,
      longitude: f.expect.longitude,
      speed: f.expect.speed_mps,
      battery: 76,
      accuracy: 8,
    });
  });

  it("OwnTracks (HTTP mode, Basic auth): answered with a JSON array, km/h converted", async () => {
    const f = fixture("owntracks");
    const device = await newDevice("owntracks");
    const res = await app.request("/v1/gps/owntracks", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: `Basic ${btoa(`jane:${device.secret}`)}`,
        ...f.headers,
      },
      body: JSON.stringify(f.body),
    });
    expect(res.status).toBe(f.expect.status);
    expect(await res.json()).toEqual(f.expect.body);
    expect(await latestOf(device.id)).toMatchObject({
      latitude: f.expect.latitude,
      longitude: f.expect.longitude,
      speed: f.expect.speed_mps,
      timestamp: new Date(f.expect.timestamp as string).toISOString(),
    });
  });

  it("Overland: a batch of GeoJSON features, answered {result: ok}", async () => {
    const f = fixture("overland");
    const device = await newDevice("overland");
    const res = await app.request(`/v1/gps/overland?access_token=${device.secret}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(f.body),
    });
    expect(res.status).toBe(f.expect.status);
    expect(await res.json()).toEqual(f.expect.body);
    expect(await countOf(device.id)).toBe(f.expect.points);
    expect(await latestOf(device.id)).toMatchObject({
      latitude: f.expect.latitude,
      longitude: f.expect.longitude,
      battery: 55,
    });
  });

  it("GPSLogger's custom URL", async () => {
    const device = await newDevice("gpslogger");
    const query = new URLSearchParams({
      key: device.secret,
      lat: "45.5017",
      lon: "-73.5673",
      time: "2025-11-22T09:00:00Z",
      spd: "1.5",
      acc: "4",
      alt: "30",
      dir: "270",
      batt: "88",
      device: "pixel-7",
    });
    expect((await app.request(`/v1/gps/gpslogger?${query}`)).status).toBe(200);
    expect(await latestOf(device.id)).toMatchObject({
      latitude: 45.5017,
      longitude: -73.5673,
      speed: 1.5,
      heading: 270,
      battery: 88,
      timestamp: "2025-11-22T09:00:00.000Z",
    });
  });

  it("refuses an unknown secret and a position without coordinates", async () => {
    await expectError(
      await app.request("/v1/gps/osmand?key=dk_nope&lat=1&lon=2&timestamp=1"),
      401,
      "unauthorized",
    );
    const device = await newDevice("broken");
    await expectError(
      await app.request(`/v1/gps/osmand?key=${device.secret}&lat=abc&lon=2&timestamp=1763800000`),
      400,
      "validation_error",
    );
  });
});

describe("the REST ingest", () => {
  it("stores a batch's good points, names the bad ones, and never duplicates a retry", async () => {
    const device = await newDevice("batcher");
    const good = (minute: number) => ({
      timestamp: `2025-11-22T10:${String(minute).padStart(2, "0")}:00Z`,
      latitude: 48.1 + minute / 1000,
      longitude: 11.5,
      speed: 3,
    });
    const body = {
      points: [
        good(1),
        { ...good(2), latitude: 123 },
        { ...good(3), longitude: "east" },
        { ...good(4), timestamp: "2030-01-01T00:00:00Z" },
        good(5),
        good(1),
      ],
    };
    const res = await send(app, "POST", "/v1/gps/batch", { body, headers: bearer(device.secret) });
    expect(res.status).toBe(200);
    const result = (await readJson(res)).data;
    expect(result.stored).toBe(2);
    expect(result.duplicates).toBe(1);
    expect(result.rejected.map((r: { index: number }) => r.index)).toEqual([1, 2, 3]);
    expect(result.rejected[0].reasons[0].field).toBe("latitude");
    expect(result.rejected[2].reasons[0]).toEqual({
      field: "timestamp",
      reason: "is in the future",
    });
    expect(result.positions.map((p: { latitude: number }) => p.latitude)).toEqual([
      good(1).latitude,
      good(5).latitude,
    ]);

    const again = await readJson(
      await send(app, "POST", "/v1/gps/batch", { body, headers: bearer(device.secret) }),
    );
    expect(again.data).toMatchObject({ stored: 0, duplicates: 3 });
    expect(await countOf(device.id)).toBe(2);

    const allBad = await send(app, "POST", "/v1/gps/batch", {
      body: { points: [{ latitude: 200 }] },
      headers: bearer(device.secret),
    });
    const error = await expectError(allBad, 400, "validation_error");
    expect(error.error.details?.[0]?.field).toMatch(/^points\[0\]\./);
    const oversize = await send(app, "POST", "/v1/gps/batch", {
      body: { points: Array.from({ length: 1001 }, (_, i) => good(i % 60)) },
      headers: bearer(device.secret),
    });
    await expectError(oversize, 400, "validation_error");
  });

  it("takes a user token with gps:write and the point's device_id; a retry answers 200", async () => {
    const device = await newDevice("via-user");
    const point = {
      device_id: device.id,
      timestamp: "2025-11-22T11:00:00Z",
      latitude: 10,
      longitude: 20,
    };
    const first = await send(app, "POST", "/v1/gps", {
      body: point,
      headers: bearer(tenant.admin.accessToken),
    });
    expect(first.status).toBe(201);
    const stored = (await readJson(first)).data;
    expect(stored).toMatchObject({
      device_id: device.id,
      latitude: 10,
      longitude: 20,
      timestamp: "2025-11-22T11:00:00.000Z",
    });
    const retry = await send(app, "POST", "/v1/gps", {
      body: point,
      headers: bearer(tenant.admin.accessToken),
    });
    expect(retry.status).toBe(200);
    expect((await readJson(retry)).data.id).toBe(stored.id);
    await expectError(
      await send(app, "POST", "/v1/gps", {
        body: { ...point, device_id: undefined },
        headers: bearer(tenant.admin.accessToken),
      }),
      400,
      "validation_error",
    );
    await expectError(
      await send(app, "POST", "/v1/gps", {
        body: point,
        headers: bearer(tenant.reader.accessToken),
      }),
      403,
      "forbidden",
    );
  });

  it("publishes every stored position and the device coming online", async () => {
    const device = await newDevice("live");
    const events: Array<{ type: string }> = [];
    const stop = realtime.listen({ appId: tenant.app.id, channel: `gps:${device.id}` }, (event) =>
      events.push(event as { type: string }),
    );
    await send(app, "POST", "/v1/gps", {
      body: { timestamp: "2025-11-22T12:00:00Z", latitude: 1, longitude: 1 },
      headers: bearer(device.secret),
    });
    stop();
    expect(events.map((e) => e.type)).toEqual(["DeviceStatus", "Position"]);
    const got = await readJson(
      await send(app, "GET", `/v1/devices/${device.id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    expect(got.data.status).toBe("online");
  });

  it("marks a device seen at each post and online once, however many posts arrive together", async () => {
    const device = await newDevice("steady");
    const events: Array<{ type: string }> = [];
    const stop = realtime.listen({ appId: tenant.app.id, channel: `gps:${device.id}` }, (event) =>
      events.push(event as { type: string }),
    );
    const post = (minute: number) =>
      send(app, "POST", "/v1/gps", {
        body: { timestamp: `2025-11-22T12:0${minute}:00Z`, latitude: 1, longitude: 1 },
        headers: bearer(device.secret),
      });
    const together = await Promise.all([post(0), post(1), post(2)]);
    expect(together.map((res) => res.status)).toEqual([201, 201, 201]);
    const seenFirst = (await deviceRow(device.id))?.last_seen_at;
    expect((await post(3)).status).toBe(201);
    stop();
    expect(events.map((e) => e.type).sort()).toEqual([
      "DeviceStatus",
      "Position",
      "Position",
      "Position",
      "Position",
    ]);
    const row = await deviceRow(device.id);
    expect(row?.status).toBe("online");
    expect(row?.last_seen_at?.getTime()).toBeGreaterThanOrEqual(seenFirst?.getTime() ?? Infinity);
    const audits = await db
      .session()
      .db.select({ action: auditLogs.action })
      .from(auditLogs)
      .where(and(eq(auditLogs.target_id, device.id), eq(auditLogs.action, "device.online")));
    expect(audits).toHaveLength(1);
  });

  it("filters history by device, time and bounding box", async () => {
    const device = await newDevice("history");
    const points = [
      { timestamp: "2025-11-20T08:00:00Z", latitude: 52.5, longitude: 13.4 },
      { timestamp: "2025-11-21T08:00:00Z", latitude: 48.8, longitude: 2.35 },
      { timestamp: "2025-11-22T08:00:00Z", latitude: 52.52, longitude: 13.41 },
    ];
    await send(app, "POST", "/v1/gps/batch", { body: { points }, headers: bearer(device.secret) });
    const get = async (query: string) =>
      (
        await readJson(
          await send(app, "GET", `/v1/gps?device_id=${device.id}&${query}`, {
            headers: bearer(tenant.admin.accessToken),
          }),
        )
      ).data.map((p: { timestamp: string }) => p.timestamp);
    expect(await get("")).toEqual([
      "2025-11-22T08:00:00.000Z",
      "2025-11-21T08:00:00.000Z",
      "2025-11-20T08:00:00.000Z",
    ]);
    expect(await get("bbox=13.0,52.0,14.0,53.0")).toEqual([
      "2025-11-22T08:00:00.000Z",
      "2025-11-20T08:00:00.000Z",
    ]);
    expect(await get("from=2025-11-21T00:00:00Z&to=2025-11-21T23:59:59Z")).toEqual([
      "2025-11-21T08:00:00.000Z",
    ]);
  });
});
