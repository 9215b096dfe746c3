import fc from "fast-check";
import simplify from "simplify-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import { type Thinning, thinnedIndices } from "../src/services/tracks";
import { createTestApp } from "./support/app";
import { databaseBackends } from "./support/backends";
import { deviceWithPoints } from "./support/gps";
import { readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

/**
 * Tracks: the thinning against simplify-js (the reference Douglas–Peucker, highest quality),
 * and a track read from each database, answered as the reference thins it.
 */

interface Walked {
  latitude: number;
  longitude: number;
  index: number;
}

/** The points `thinnedIndices` keeps of `points`. */
function thinTrack<T extends { latitude: number; longitude: number }>(
  points: T[],
  options: Thinning,
) {
  const latitudes = Float64Array.from(points, (point) => point.latitude);
  const longitudes = Float64Array.from(points, (point) => point.longitude);
  return thinnedIndices(latitudes, longitudes, options).map((i) => points[i] as T);
}

/** simplify-js on the projection `thinnedIndices` uses. */
function referenceThinning<T extends { latitude: number; longitude: number }>(
  points: T[],
  toleranceMetres: number,
): T[] {
  const [first] = points;
  if (!first || points.length <= 2) return points;
  const lonScale = 111_320 * Math.cos((first.latitude * Math.PI) / 180);
  const projected = points.map((point) => ({
    x: point.longitude * lonScale,
    y: point.latitude * 110_540,
    point,
  }));
  return simplify(projected, toleranceMetres, true).map(
    (p) => (p as (typeof projected)[number]).point,
  );
}

const indexed = (points: Array<{ latitude: number; longitude: number }>): Walked[] =>
  points.map((point, index) => ({ ...point, index }));

describe("thinning", () => {
  it("keeps the points simplify-js keeps, on a coarse grid (repeated points, zero-length chords, collinear runs)", () => {
    const onGrid = fc.record({
      latitude: fc.integer({ min: -20, max: 20 }).map((n) => 52.5 + n * 2e-5),
      longitude: fc.integer({ min: -20, max: 20 }).map((n) => 13.4 + n * 2e-5),
    });
    fc.assert(
      fc.property(
        fc.array(onGrid, { maxLength: 200 }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        (grid, tolerance) => {
          const points = indexed(grid);
          expect(thinTrack(points, { toleranceMetres: tolerance }).map((p) => p.index)).toEqual(
            referenceThinning(points, tolerance).map((p) => p.index),
          );
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("keeps the points simplify-js keeps, on random walks of thousands of points", () => {
    const step = fc.tuple(
      fc.double({ min: -1e-4, max: 1e-4, noNaN: true }),
      fc.double({ min: -1e-4, max: 1e-4, noNaN: true }),
    );
    fc.assert(
      fc.property(
        fc.array(step, { minLength: 1000, maxLength: 5000 }),
        fc.double({ min: 0.1, max: 50, noNaN: true }),
        (steps, tolerance) => {
          let latitude = 48.1;
          let longitude = 11.5;
          const points = indexed(
            steps.map(([north, east]) => {
              latitude += north;
              longitude += east;
              return { latitude, longitude };
            }),
          );
          expect(thinTrack(points, { toleranceMetres: tolerance }).map((p) => p.index)).toEqual(
            referenceThinning(points, tolerance).map((p) => p.index),
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe.each(databaseBackends("track reads"))("a track read from $name", (backend) => {
  let dispose: () => Promise<void>;
  let app: App;
  let tenant: Tenant;
  let device: { id: string; secret: string };
  // 1,500 points a second apart with milliseconds, an altitude on every third, a curving path.
  const start = Date.parse("2025-11-20T10:00:00.123Z");
  const posted = Array.from({ length: 1500 }, (_, i) => ({
    timestamp: new Date(start + i * 1000).toISOString(),
    latitude: 52.5 + Math.sin(i / 90) / 500 + ((i * 7919) % 13) * 1e-6,
    longitude: 13.4 + Math.cos(i / 130) / 500,
    ...(i % 3 === 0 ? { altitude: 30 + (i % 17) / 4 } : {}),
  }));
  // Both ends are inclusive: the 100th point to the 1,400th.
  const inRange = posted.slice(100, 1401);
  const range = `from=${posted[100]?.timestamp}&to=${posted[1400]?.timestamp}`;

  beforeAll(async () => {
    let db: Awaited<ReturnType<typeof backend.open>>["db"];
    ({ db, dispose } = await backend.open());
    app = createTestApp({ db }).app;
    tenant = await createTenant(app, "tracks");
    device = await deviceWithPoints(app, tenant.admin.accessToken, { name: "walker" }, posted);
  });
  afterAll(() => dispose());

  const track = async (query: string) => {
    const res = await send(app, "GET", `/v1/devices/${device.id}/track?${range}&${query}`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect(res.status).toBe(200);
    return res;
  };

  it("answers the points the reference thinning keeps, with their altitudes and times", async () => {
    const kept = referenceThinning(inRange, 2);
    expect(kept.length).toBeGreaterThan(10);
    expect(kept.length).toBeLessThan(inRange.length / 4);
    expect(await readJson(await track("simplify=2"))).toEqual({
      type: "Feature",
      geometry: {
        type: "LineString",
        coordinates: kept.map((p) =>
          p.altitude === undefined
            ? [p.longitude, p.latitude]
            : [p.longitude, p.latitude, p.altitude],
        ),
      },
      properties: {
        device_id: device.id,
        points: kept.length,
        points_in_range: inRange.length,
        coordTimes: kept.map((p) => p.timestamp),
      },
    });
  });

  it("caps the points evenly, first and last kept, and writes GPX of the same points", async () => {
    const capped = await readJson(await track("max_points=25"));
    const expected = Array.from(
      { length: 25 },
      (_, i) => inRange[Math.round((i * (inRange.length - 1)) / 24)],
    );
    expect(capped.properties.coordTimes).toEqual(expected.map((p) => p?.timestamp));
    expect(capped.properties.coordTimes[0]).toBe(posted[100]?.timestamp);
    expect(capped.properties.coordTimes.at(-1)).toBe(posted[1400]?.timestamp);

    const gpx = await (await track("max_points=25&format=gpx")).text();
    expect(
      [
        ...gpx.matchAll(
          /<trkpt lat="([^"]+)" lon="([^"]+)">(?:<ele>([^<]+)<\/ele>)?<time>([^<]+)/g,
        ),
      ].map(([, lat, lon, ele, time]) => [Number(lat), Number(lon), ele && Number(ele), time]),
    ).toEqual(expected.map((p) => [p?.latitude, p?.longitude, p?.altitude, p?.timestamp]));
  });
});
