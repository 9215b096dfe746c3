import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScheduledJobs } from "../functions";
import type { createMemoryRealtime } from "../src/adapters/memory/realtime";
import type { App } from "../src/app";
import type { DatabasePort, Ports } from "../src/ports";
import type { Services } from "../src/services/context";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { deviceWithPoints } from "./support/gps";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let ports: Ports;
let services: Services;
let tenant: Tenant;
const clock = createTestClock(new Date("2025-11-23T00:00:00Z"));

beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app, ports, services } = createTestApp({ db, clock }));
  tenant = await createTenant(app, "zulu");
});
afterAll(() => db.close());

const as = () => bearer(tenant.admin.accessToken);

function deviceWith(
  points: Array<{ timestamp: string; latitude: number; longitude: number }>,
  interval = 60,
) {
  return deviceWithPoints(
    app,
    tenant.admin.accessToken,
    { name: "d", expected_interval_seconds: interval },
    points,
  );
}

describe("positions and tracks", () => {
  it("gets and deletes one position", async () => {
    const device = await deviceWith([
      { timestamp: "2025-11-22T08:00:00Z", latitude: 1, longitude: 2 },
    ]);
    const page = await readJson(
      await send(app, "GET", `/v1/gps?device_id=${device.id}`, { headers: as() }),
    );
    const id = page.data[0].id;
    const got = await readJson(await send(app, "GET", `/v1/gps/${id}`, { headers: as() }));
    expect(got.data).toMatchObject({ id, latitude: 1, longitude: 2 });
    expect((await send(app, "DELETE", `/v1/gps/${id}`, { headers: as() })).status).toBe(204);
    await expectError(await send(app, "GET", `/v1/gps/${id}`, { headers: as() }), 404, "not_found");
  });

  it("draws a straight walk with two points after simplification, as GeoJSON and GPX", async () => {
    // 600 points along a straight line north, one a second, with 1 m of zig-zag noise.
    const points = Array.from({ length: 600 }, (_, i) => ({
      timestamp: new Date(Date.parse("2025-11-22T09:00:00Z") + i * 1000).toISOString(),
      latitude: 52.5 + i * 0.00001,
      longitude: 13.4 + (i % 2) * 0.000005,
    }));
    const device = await deviceWith(points);
    const range = "from=2025-11-22T00:00:00Z&to=2025-11-23T00:00:00Z";
    const raw = await send(app, "GET", `/v1/devices/${device.id}/track?${range}`, {
      headers: as(),
    });
    expect(raw.headers.get("content-type")).toMatch(/application\/geo\+json/);
    const full = await readJson(raw);
    expect(full.geometry.type).toBe("LineString");
    expect(full.geometry.coordinates).toHaveLength(600);
    expect(full.geometry.coordinates[0]).toEqual([13.4, 52.5]);

    const simplified = await readJson(
      await send(app, "GET", `/v1/devices/${device.id}/track?${range}&simplify=5`, {
        headers: as(),
      }),
    );
    expect(simplified.geometry.coordinates).toHaveLength(2);
    expect(simplified.properties).toMatchObject({ points: 2, points_in_range: 600 });

    const capped = await readJson(
      await send(app, "GET", `/v1/devices/${device.id}/track?${range}&max_points=50`, {
        headers: as(),
      }),
    );
    expect(capped.geometry.coordinates).toHaveLength(50);
    expect(capped.geometry.coordinates.at(-1)).toEqual(full.geometry.coordinates.at(-1));

    const gpx = await send(
      app,
      "GET",
      `/v1/devices/${device.id}/track?${range}&format=gpx&max_points=3`,
      {
        headers: as(),
      },
    );
    expect(gpx.headers.get("content-type")).toMatch(/application\/gpx\+xml/);
    const xml = await gpx.text();
    expect(xml.match(/<trkpt /g)).toHaveLength(3);
    expect(xml).toContain(
      '<trkpt lat="52.5" lon="13.4"><time>2025-11-22T09:00:00.000Z</time></trkpt>',
    );
  });

  it("answers a range of one point as a Point and an empty range as an empty FeatureCollection", async () => {
    const device = await deviceWith([
      { timestamp: "2025-11-21T08:00:00Z", latitude: 48.1, longitude: 11.5 },
    ]);
    const track = async (range: string) => {
      const res = await send(app, "GET", `/v1/devices/${device.id}/track?${range}`, {
        headers: as(),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/application\/geo\+json/);
      return readJson(res);
    };
    expect(await track("from=2025-11-21T00:00:00Z&to=2025-11-21T23:59:59Z")).toEqual({
      type: "Feature",
      geometry: { type: "Point", coordinates: [11.5, 48.1] },
      properties: {
        device_id: device.id,
        points: 1,
        points_in_range: 1,
        time: "2025-11-21T08:00:00.000Z",
      },
    });
    expect(await track("from=2025-11-20T00:00:00Z&to=2025-11-20T23:59:59Z")).toEqual({
      type: "FeatureCollection",
      features: [],
    });
    // The document says so: the track's GeoJSON is one of the three.
    const doc = await readJson(await app.request("/v1/openapi.json"));
    const schema =
      doc.paths["/v1/devices/{device_id}/track"].get.responses["200"].content[
        "application/geo+json"
      ].schema;
    expect(schema).toEqual({ $ref: "#/components/schemas/Track" });
    expect(
      doc.components.schemas.Track.anyOf.map((s: { $ref: string }) => s.$ref.split("/").at(-1)),
    ).toEqual(["TrackLine", "TrackPoint", "TrackEmpty"]);
    expect(
      doc.components.schemas.TrackLine.properties.geometry.properties.coordinates.minItems,
    ).toBe(2);
  });

  it("exports GPX that is XML 1.0 whatever control characters the device's name holds", async () => {
    const name = "bell\u0007 tab\t back\u0008 esc\u001b <a&b> \uffff end";
    const device = (
      await readJson(await send(app, "POST", "/v1/devices", { body: { name }, headers: as() }))
    ).data as { id: string; secret: string };
    await send(app, "POST", "/v1/gps/batch", {
      body: { points: [{ timestamp: "2025-11-21T09:00:00Z", latitude: 1, longitude: 2 }] },
      headers: bearer(device.secret),
    });
    const res = await send(
      app,
      "GET",
      `/v1/devices/${device.id}/track?from=2025-11-21T00:00:00Z&to=2025-11-22T00:00:00Z&format=gpx`,
      { headers: as() },
    );
    expect(res.status).toBe(200);
    const xml = await res.text();
    // XML 1.0's Char production (section 2.2): every character of the document must be one.
    const notXmlChar = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
    expect(xml).not.toMatch(notXmlChar);
    expect(xml).toContain("<name>bell tab\t back esc &#60;a&#38;b&#62;  end</name>");
  });

  it("counts for /v1/stats", async () => {
    const stats = await readJson(await send(app, "GET", "/v1/stats", { headers: as() }));
    expect(stats.data).toMatchObject({ users: 2, tokens_issued_24h: 2 });
    expect(stats.data.devices).toBeGreaterThanOrEqual(2);
    expect(stats.data.points_per_day).toContainEqual({ day: "2025-11-22", points: 600 });
    await expectError(
      await send(app, "GET", "/v1/stats", { headers: bearer(tenant.reader.accessToken) }),
      403,
      "forbidden",
    );
  });
});

describe("scheduled functions", () => {
  it("marks a device offline when it misses its interval, audited and published", async () => {
    const device = await deviceWith(
      [{ timestamp: "2025-11-22T23:59:00Z", latitude: 1, longitude: 1 }],
      120,
    );
    const events: unknown[] = [];
    const stop = (ports.realtime as ReturnType<typeof createMemoryRealtime>).listen(
      { appId: tenant.app.id, channel: `gps:${device.id}` },
      (event) => events.push(event),
    );
    await runScheduledJobs(services, ports.db);
    const status = async () =>
      (await readJson(await send(app, "GET", `/v1/devices/${device.id}`, { headers: as() }))).data
        .status;
    expect(await status()).toBe("online");
    clock.advance(121_000);
    expect(await runScheduledJobs(services, ports.db)).toBe(0);
    stop();
    expect(await status()).toBe("offline");
    expect(events).toEqual([
      {
        type: "DeviceStatus",
        channel: `gps:${device.id}`,
        data: { device_id: device.id, status: "offline", at: clock.now().toISOString() },
      },
    ]);
    const audit = await readJson(
      await send(
        app,
        "GET",
        `/v1/apps/zulu/audit-logs?action=device.offline&target_id=${device.id}`,
        {
          headers: adminHeaders,
        },
      ),
    );
    expect(audit.pagination.total).toBe(1);
  });

  it("deletes positions past the app's retention, and keeps everything by default", async () => {
    const device = await deviceWith([
      { timestamp: "2025-10-01T00:00:00Z", latitude: 1, longitude: 1 },
      { timestamp: "2025-11-20T00:00:00Z", latitude: 1, longitude: 1 },
    ]);
    const count = async () =>
      (await readJson(await send(app, "GET", `/v1/gps?device_id=${device.id}`, { headers: as() })))
        .pagination.total;
    await runScheduledJobs(services, ports.db);
    expect(await count()).toBe(2);
    await send(app, "PATCH", "/v1/apps/zulu/settings", {
      body: { gps_retention_days: 30 },
      headers: adminHeaders,
    });
    await runScheduledJobs(services, ports.db);
    expect(await count()).toBe(1);
  });
});
