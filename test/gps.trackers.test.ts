import { readFileSync } from "node:fs";
import { and, asc, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import { auditLogs, devices, positions } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import { createTestApp } from "./support/app";
import { databaseBackends } from "./support/backends";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

/**
 * What tracker apps really send, posted as they send it, and the rows it leaves: unknown
 * readings (-1) stored as absent, OwnTracks' arrays and empty bodies, OsmAnd's m/s; then a walk
 * of every tracker route of the OpenAPI document showing that no point of a request is dropped
 * without being named in the answer.
 */

interface Fixture {
  method: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string;
  expect: Record<string, unknown> & { status: number; body?: unknown };
}
const fixture = (name: string): Fixture =>
  JSON.parse(readFileSync(new URL(`./fixtures/devices/${name}.json`, import.meta.url), "utf8"));

const json = { "Content-Type": "application/json" };

describe.each(databaseBackends("tracker payloads"))("tracker apps on $name", (backend) => {
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  let app: App;
  let tenant: Tenant;

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    app = createTestApp({ db }).app;
    tenant = await createTenant(app, "trackers");
  });
  afterAll(() => dispose());

  async function newDevice(name: string) {
    const res = await send(app, "POST", "/v1/devices", {
      body: { name },
      headers: bearer(tenant.admin.accessToken),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await readJson(res)).data as { id: string; secret: string };
  }

  /** The device's stored rows, oldest first, straight from the database. */
  async function rowsOf(deviceId: string) {
    const session = db.session();
    try {
      return await session.db
        .select()
        .from(positions)
        .where(eq(positions.device_id, deviceId))
        .orderBy(asc(positions.timestamp));
    } finally {
      await session.release();
    }
  }

  describe("payloads as the apps send them", () => {
    it("Traccar Client 9 standing still (speed and heading -1): kept, both absent", async () => {
      const f = fixture("traccar-client-9-stationary");
      const device = await newDevice("traccar-9");
      const res = await app.request(`/v1/gps/osmand?key=${device.secret}`, {
        method: "POST",
        headers: json,
        body: JSON.stringify(f.body),
      });
      expect(res.status, await res.clone().text()).toBe(f.expect.status);
      expect(res.headers.get("heimdall-rejected")).toBeNull();
      const rows = await rowsOf(device.id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        latitude: f.expect.latitude,
        longitude: f.expect.longitude,
        speed: null,
        heading: null,
        accuracy: f.expect.accuracy,
        battery: f.expect.battery,
      });
    });

    it("Overland with speed and battery_level -1: every location kept, unknowns absent", async () => {
      const f = fixture("overland-unknown");
      const device = await newDevice("overland-ios");
      const res = await app.request(`/v1/gps/overland?access_token=${device.secret}`, {
        method: "POST",
        headers: json,
        body: JSON.stringify(f.body),
      });
      expect(res.status).toBe(f.expect.status);
      expect(await res.json()).toEqual(f.expect.body);
      const rows = await rowsOf(device.id);
      expect(rows).toMatchObject(f.expect.points as object[]);
      expect(rows[0]?.attributes).toMatchObject({
        vertical_accuracy: -1,
        battery_state: "unknown",
      });
    });

    it("OwnTracks posting an array: each location stored, other messages skipped", async () => {
      const f = fixture("owntracks-array");
      const device = await newDevice("owntracks-array");
      const res = await app.request("/v1/gps/owntracks", {
        method: "POST",
        headers: { ...json, Authorization: `Basic ${btoa(`jane:${device.secret}`)}`, ...f.headers },
        body: JSON.stringify(f.body),
      });
      expect(res.status, await res.clone().text()).toBe(f.expect.status);
      expect(await res.json()).toEqual(f.expect.body);
      expect(res.headers.get("heimdall-rejected")).toBeNull();
      const rows = await rowsOf(device.id);
      expect(rows.map((row) => ({ ...row, timestamp: row.timestamp.toISOString() }))).toMatchObject(
        f.expect.points as object[],
      );
    });

    it("OwnTracks' empty POST (a friend removed) answers [] and stores nothing", async () => {
      const f = fixture("owntracks-empty");
      const device = await newDevice("owntracks-empty");
      const res = await app.request("/v1/gps/owntracks", {
        method: "POST",
        headers: { Authorization: `Basic ${btoa(`jane:${device.secret}`)}`, ...f.headers },
        body: f.rawBody,
      });
      expect(res.status).toBe(f.expect.status);
      expect(await res.json()).toEqual(f.expect.body);
      expect(await rowsOf(device.id)).toHaveLength(f.expect.points as number);
    });

    it("OsmAnd's template with speed_unit=mps keeps m/s; Traccar Client's default is knots", async () => {
      const f = fixture("osmand-app");
      const device = await newDevice("osmand-app");
      const res = await app.request(
        `/v1/gps/osmand?${new URLSearchParams({ key: device.secret, ...f.query })}`,
      );
      expect(res.status, await res.clone().text()).toBe(f.expect.status);
      const [row] = await rowsOf(device.id);
      expect({ ...row, timestamp: row?.timestamp.toISOString() }).toMatchObject({
        latitude: f.expect.latitude,
        longitude: f.expect.longitude,
        speed: f.expect.speed_mps,
        accuracy: f.expect.accuracy,
        timestamp: f.expect.timestamp,
      });

      const base = { key: device.secret, lat: "52.5", lon: "13.4", speed: "36" };
      const speedOf = async (minute: number, unit?: string) => {
        const timestamp = String(Date.parse(`2025-11-22T09:0${minute}:00Z`) / 1000);
        const query = new URLSearchParams({
          ...base,
          timestamp,
          ...(unit ? { speed_unit: unit } : {}),
        });
        expect((await app.request(`/v1/gps/osmand?${query}`)).status).toBe(200);
        return (await rowsOf(device.id)).at(-1)?.speed;
      };
      expect(await speedOf(1)).toBe(18.52);
      expect(await speedOf(2, "kn")).toBe(18.52);
      expect(await speedOf(3, "kmh")).toBe(10);
      expect(await speedOf(4, "mps")).toBe(36);
      const unknownUnit = await app.request(
        `/v1/gps/osmand?${new URLSearchParams({ ...base, timestamp: "1763800900", speed_unit: "mph" })}`,
      );
      const error = await expectError(unknownUnit, 400, "validation_error");
      expect(error.error.details?.[0]?.field).toBe("query.speed_unit");
      expect(await rowsOf(device.id)).toHaveLength(5);
    });

    it("a point sent again while the first send is being stored: both answered, stored once, online once", async () => {
      const device = await newDevice("osmand-resend");
      const query = new URLSearchParams({
        key: device.secret,
        lat: "52.5",
        lon: "13.4",
        timestamp: "1763802000",
      });
      const sends = await Promise.all(
        Array.from({ length: 6 }, () => app.request(`/v1/gps/osmand?${query}`)),
      );
      expect(sends.map((res) => res.status)).toEqual([200, 200, 200, 200, 200, 200]);
      expect(await rowsOf(device.id)).toHaveLength(1);
      const session = db.session();
      try {
        const [seen] = await session.db.select().from(devices).where(eq(devices.id, device.id));
        expect(seen?.status).toBe("online");
        const online = await session.db
          .select({ id: auditLogs.id })
          .from(auditLogs)
          .where(and(eq(auditLogs.target_id, device.id), eq(auditLogs.action, "device.online")));
        expect(online).toHaveLength(1);
      } finally {
        await session.release();
      }
    });

    it("the REST API takes -1 readings as unknown too, and still refuses other bad values", async () => {
      const device = await newDevice("rest-unknown");
      const point = { timestamp: "2025-11-22T10:00:00Z", latitude: 1, longitude: 2 };
      const unknown = { speed: -1, heading: -1, accuracy: -1, battery: -1 };
      const one = await send(app, "POST", "/v1/gps", {
        body: { ...point, ...unknown },
        headers: bearer(device.secret),
      });
      expect(one.status, await one.clone().text()).toBe(201);
      expect((await readJson(one)).data).toMatchObject({
        speed: null,
        heading: null,
        accuracy: null,
        battery: null,
      });
      await expectError(
        await send(app, "POST", "/v1/gps", {
          body: { ...point, timestamp: "2025-11-22T10:01:00Z", heading: 400 },
          headers: bearer(device.secret),
        }),
        400,
        "validation_error",
      );
      expect(await rowsOf(device.id)).toHaveLength(1);
    });
  });

  /**
   * Every operation of the document that takes a device secret the way tracker apps carry it
   * (the `deviceKey` scheme), posted a mix of good points, points with unknown readings and
   * invalid ones, in the app's own format. Each point must end up stored (unknowns absent) or
   * named in the answer: the `Heimdall-Rejected` indexes of a many-point request, or the 400 of
   * a one-point request. An operation this table cannot encode fails the walk.
   */
  describe("no tracker route drops a point without naming it", () => {
    interface Sample {
      timestamp: string;
      latitude: number;
      longitude: number;
      speed: number;
      heading: number;
      accuracy: number;
      battery: number;
    }
    type Request = { path: string; init?: RequestInit };
    /** Many points in one request, or one request per point. */
    type Encoder =
      | { batch: true; request(secret: string, points: Sample[]): Request & { indexes: number[] } }
      | { batch: false; request(secret: string, point: Sample): Request };

    const unix = (iso: string) => String(Date.parse(iso) / 1000);
    const query = (secret: string, fields: Record<string, string | number>) =>
      new URLSearchParams({
        key: secret,
        ...Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, String(v)])),
      });
    const osmandQuery = (p: Sample) => ({
      timestamp: unix(p.timestamp),
      lat: p.latitude,
      lon: p.longitude,
      speed: p.speed < 0 ? p.speed : p.speed / 0.514444,
      bearing: p.heading,
      accuracy: p.accuracy,
      batt: p.battery,
    });
    const gpsloggerQuery = (p: Sample) => ({
      time: p.timestamp,
      lat: p.latitude,
      lon: p.longitude,
      spd: p.speed,
      dir: p.heading,
      acc: p.accuracy,
      batt: p.battery,
    });
    const level = (battery: number) => (battery < 0 ? -1 : battery / 100);

    const encoders: Record<string, Encoder> = {
      "get /v1/gps/osmand": {
        batch: false,
        request: (secret, p) => ({ path: `/v1/gps/osmand?${query(secret, osmandQuery(p))}` }),
      },
      "post /v1/gps/osmand": {
        batch: true,
        request: (secret, points) => ({
          path: `/v1/gps/osmand?key=${secret}`,
          init: {
            method: "POST",
            headers: json,
            body: JSON.stringify({
              device_id: "walk",
              location: points.map((p) => ({
                timestamp: p.timestamp,
                coords: {
                  latitude: p.latitude,
                  longitude: p.longitude,
                  speed: p.speed,
                  heading: p.heading,
                  accuracy: p.accuracy,
                },
                battery: { level: level(p.battery), is_charging: false },
              })),
            }),
          },
          indexes: points.map((_, i) => i),
        }),
      },
      "post /v1/gps/owntracks": {
        batch: true,
        // A waypoint message first, so each location's index is one more than its sample's.
        request: (secret, points) => ({
          path: "/v1/gps/owntracks",
          init: {
            method: "POST",
            headers: { ...json, Authorization: `Basic ${btoa(`walk:${secret}`)}` },
            body: JSON.stringify([
              { _type: "waypoint", desc: "Home", lat: 1, lon: 2, rad: 50, tst: 1763700000 },
              ...points.map((p) => ({
                _type: "location",
                tid: "WK",
                tst: Number(unix(p.timestamp)),
                lat: p.latitude,
                lon: p.longitude,
                vel: p.speed < 0 ? p.speed : p.speed * 3.6,
                cog: p.heading,
                acc: p.accuracy,
                batt: p.battery,
              })),
            ]),
          },
          indexes: points.map((_, i) => i + 1),
        }),
      },
      "post /v1/gps/overland": {
        batch: true,
        request: (secret, points) => ({
          path: `/v1/gps/overland?access_token=${secret}`,
          init: {
            method: "POST",
            headers: json,
            body: JSON.stringify({
              locations: points.map((p) => ({
                type: "Feature",
                geometry: { type: "Point", coordinates: [p.longitude, p.latitude] },
                properties: {
                  timestamp: p.timestamp,
                  speed: p.speed,
                  horizontal_accuracy: p.accuracy,
                  battery_level: level(p.battery),
                },
              })),
            }),
          },
          indexes: points.map((_, i) => i),
        }),
      },
      "get /v1/gps/gpslogger": {
        batch: false,
        request: (secret, p) => ({ path: `/v1/gps/gpslogger?${query(secret, gpsloggerQuery(p))}` }),
      },
      "post /v1/gps/gpslogger": {
        batch: false,
        request: (secret, p) => ({
          path: `/v1/gps/gpslogger?key=${secret}`,
          init: {
            method: "POST",
            headers: { "Content-Type": "application/x-www-form-urlencoded" },
            body: new URLSearchParams(
              Object.entries(gpsloggerQuery(p)).map(([k, v]) => [k, String(v)]),
            ).toString(),
          },
        }),
      },
    };

    const at = (minute: number) => `2025-11-22T11:${String(minute).padStart(2, "0")}:00.000Z`;
    const sample = (minute: number, fields: Partial<Sample> = {}): Sample => ({
      timestamp: at(minute),
      latitude: 50 + minute / 1000,
      longitude: 8,
      speed: 2,
      heading: 45,
      accuracy: 5,
      battery: 80,
      ...fields,
    });
    const unknown = { speed: -1, heading: -1, accuracy: -1, battery: -1 };
    /** Kept or refused, in the order posted. */
    const samples: Array<{ point: Sample; valid: boolean; unknown?: boolean }> = [
      { point: sample(1), valid: true },
      { point: sample(2, unknown), valid: true, unknown: true },
      { point: sample(3, { latitude: 200 }), valid: false },
      { point: sample(4, { speed: -1 }), valid: true, unknown: true },
      { point: sample(5, { timestamp: "2031-01-01T00:00:00.000Z" }), valid: false },
      { point: sample(6), valid: true },
    ];

    it("refuses a tracker request of more than 1,000 points whole, storing none", async () => {
      const many = Array.from({ length: 1001 }, (_, i) => ({
        ...sample(0),
        timestamp: new Date(Date.parse(at(0)) + i * 1000).toISOString(),
      }));
      for (const [op, encoder] of Object.entries(encoders)) {
        if (!encoder.batch) continue;
        const device = await newDevice(`many ${op}`);
        const { path, init } = encoder.request(device.secret, many);
        const error = await expectError(await app.request(path, init), 400, "validation_error");
        expect(error.error.details, op).toEqual([
          { field: "points", reason: "at most 1000 items" },
        ]);
        expect(await rowsOf(device.id), op).toHaveLength(0);
      }
    });

    it("walks every tracker operation of the OpenAPI document", async () => {
      const doc = (await (await app.request("/v1/openapi.json")).json()) as {
        paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>;
      };
      const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item)
          .filter(([, op]) => (op.security ?? []).some((r) => "deviceKey" in r))
          .map(([method]) => `${method} ${path}`),
      );
      expect(operations.length).toBeGreaterThanOrEqual(6);
      expect(
        operations.filter((op) => !(op in encoders)),
        "tracker operations the walk cannot encode",
      ).toEqual([]);

      for (const op of operations) {
        const encoder = encoders[op] as Encoder;
        const device = await newDevice(`walk ${op}`);
        const named = new Set<number>();
        if (encoder.batch) {
          const { path, init, indexes } = encoder.request(
            device.secret,
            samples.map((s) => s.point),
          );
          const res = await app.request(path, init);
          expect(res.status, `${op}: ${await res.clone().text()}`).toBe(200);
          const header = res.headers.get("heimdall-rejected") ?? "";
          for (const index of header.split(",").filter(Boolean)) {
            named.add(indexes.indexOf(Number(index)));
          }
          if (op === "post /v1/gps/overland") {
            const body = await res.json();
            expect(body.result).toBe("ok");
            expect(body.rejected.map((r: { index: number }) => r.index)).toEqual([...named]);
          }
        } else {
          for (const [i, { point }] of samples.entries()) {
            const { path, init } = encoder.request(device.secret, point);
            const res = await app.request(path, init);
            if (res.status === 400) {
              const error = await readJson(res);
              expect(error.error.details?.[0]?.field, op).toMatch(/^points\[0\]\./);
              named.add(i);
            } else {
              expect(res.status, `${op}: ${await res.clone().text()}`).toBe(200);
            }
          }
        }
        const rows = await rowsOf(device.id);
        const stored = rows.map((row) => row.timestamp.toISOString());
        for (const [i, s] of samples.entries()) {
          const where = `${op}, point ${i}`;
          expect(
            stored.includes(s.point.timestamp) !== named.has(i),
            `${where} is stored or named, not both, not neither`,
          ).toBe(true);
          expect(named.has(i), `${where} named only if invalid`).toBe(!s.valid);
        }
        for (const row of rows) {
          const s = samples.find((x) => x.point.timestamp === row.timestamp.toISOString());
          const where = `${op}, the row of ${row.timestamp.toISOString()}`;
          if (s?.unknown) expect(row.speed, where).toBeNull();
          else expect(row.speed, where).toBeCloseTo(2, 2);
          if (s?.point.battery === -1) {
            expect([row.heading, row.accuracy, row.battery], where).toEqual([null, null, null]);
          }
        }
      }
    });
  });
});
