import simplify from "simplify-js";

export interface TrackPoint {
  timestamp: Date;
  latitude: number;
  longitude: number;
  altitude: number | null;
}

/** How a track is thinned for drawing: a tolerance in metres, a cap on its points. */
export interface Thinning {
  toleranceMetres?: number | undefined;
  maxPoints?: number | undefined;
}

const METRES_PER_DEGREE_LAT = 110_540;
const METRES_PER_DEGREE_LON_AT_EQUATOR = 111_320;

/**
 * Thins a track for drawing: Douglas–Peucker (`simplify-js`) with a tolerance in metres, on a
 * local equirectangular projection (good to well under a metre at city scale), then an even
 * thinning to at most `maxPoints`. First and last points are always kept.
 */
export function thinTrack<T extends { latitude: number; longitude: number }>(
  points: T[],
  options: Thinning,
): T[] {
  let kept = points;
  const first = points[0];
  if (options.toleranceMetres && first && points.length > 2) {
    const lonScale = METRES_PER_DEGREE_LON_AT_EQUATOR * Math.cos((first.latitude * Math.PI) / 180);
    const projected = points.map((point) => ({
      x: point.longitude * lonScale,
      y: point.latitude * METRES_PER_DEGREE_LAT,
      point,
    }));
    kept = simplify(projected, options.toleranceMetres, true).map(
      (p) => (p as (typeof projected)[number]).point,
    );
  }
  const max = options.maxPoints;
  if (max && kept.length > max && max >= 2) {
    const step = (kept.length - 1) / (max - 1);
    kept = Array.from({ length: max }, (_, i) => kept[Math.round(i * step)] as T);
  }
  return kept;
}

const coordinatesOf = (p: TrackPoint) =>
  p.altitude === null ? [p.longitude, p.latitude] : [p.longitude, p.latitude, p.altitude];

/**
 * A track as GeoJSON (RFC 7946): a `Feature<LineString>` with the times of its points
 * (`coordTimes`, as togeojson). A LineString needs two positions or more, so one point is a
 * `Feature<Point>` (its time in `time`) and none an empty `FeatureCollection`.
 */
export function trackToGeoJson(deviceId: string, points: TrackPoint[], total: number) {
  const [only] = points;
  if (!only) return { type: "FeatureCollection" as const, features: [] };
  const properties = { device_id: deviceId, points: points.length, points_in_range: total };
  if (points.length === 1) {
    return {
      type: "Feature" as const,
      geometry: { type: "Point" as const, coordinates: coordinatesOf(only) },
      properties: { ...properties, time: only.timestamp.toISOString() },
    };
  }
  return {
    type: "Feature" as const,
    geometry: { type: "LineString" as const, coordinates: points.map(coordinatesOf) },
    properties: { ...properties, coordTimes: points.map((p) => p.timestamp.toISOString()) },
  };
}

/**
 * Text as XML 1.0 character data: the characters XML 1.0 forbids (C0 controls but tab, LF and
 * CR; lone surrogates; U+FFFE, U+FFFF) are dropped, since no escape can carry them, and markup
 * is escaped.
 */
const xmlText = (text: string) =>
  text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** GPX 1.1 with one track segment. */
export function trackToGpx(device: { id: string; name: string }, points: TrackPoint[]) {
  const trkpts = points
    .map(
      (p) =>
        `      <trkpt lat="${p.latitude}" lon="${p.longitude}">${p.altitude === null ? "" : `<ele>${p.altitude}</ele>`}<time>${p.timestamp.toISOString()}</time></trkpt>`,
    )
    .join("\n");
  return `<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="Heimdall" xmlns="http://www.topografix.com/GPX/1/1">
  <trk>
    <name>${xmlText(device.name)}</name>
    <desc>${xmlText(device.id)}</desc>
    <trkseg>
${trkpts}
    </trkseg>
  </trk>
</gpx>
`;
}
