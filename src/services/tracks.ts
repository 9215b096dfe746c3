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
 * Thins a track held as columns for drawing: Douglas–Peucker with a tolerance in metres, on a
 * local equirectangular projection (good to well under a metre at city scale), then an even
 * thinning to at most `maxPoints`. First and last points are always kept. Answers the indices of
 * the points it keeps, in order.
 */
export function thinnedIndices(
  latitudes: Float64Array,
  longitudes: Float64Array,
  options: Thinning,
): number[] {
  const count = latitudes.length;
  let kept: number[] = [];
  if (options.toleranceMetres && count > 2) {
    const lonScale =
      METRES_PER_DEGREE_LON_AT_EQUATOR * Math.cos(((latitudes[0] as number) * Math.PI) / 180);
    const xs = new Float64Array(count);
    const ys = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      xs[i] = (longitudes[i] as number) * lonScale;
      ys[i] = (latitudes[i] as number) * METRES_PER_DEGREE_LAT;
    }
    const keep = douglasPeucker(xs, ys, options.toleranceMetres);
    for (let i = 0; i < count; i++) if (keep[i] === 1) kept.push(i);
  } else {
    kept = Array.from({ length: count }, (_, i) => i);
  }
  const max = options.maxPoints;
  if (max && kept.length > max && max >= 2) {
    const step = (kept.length - 1) / (max - 1);
    kept = Array.from({ length: max }, (_, i) => kept[Math.round(i * step)] as number);
  }
  return kept;
}

/**
 * Which points of a line Douglas–Peucker keeps (1) at `tolerance`: both ends, and within each
 * span the first point farthest from the segment between the span's ends, when it is farther
 * than `tolerance`, which splits the span in two. The spans wait on a stack of index
 * pairs, so a line of any length needs no recursion and no object per point.
 */
function douglasPeucker(xs: Float64Array, ys: Float64Array, tolerance: number): Uint8Array {
  const last = xs.length - 1;
  const keep = new Uint8Array(xs.length);
  keep[0] = 1;
  keep[last] = 1;
  const sqTolerance = tolerance * tolerance;
  const spans = [0, last];
  while (spans.length > 0) {
    const end = spans.pop() as number;
    const start = spans.pop() as number;
    const ax = xs[start] as number;
    const ay = ys[start] as number;
    const bx = xs[end] as number;
    const by = ys[end] as number;
    const dx = bx - ax;
    const dy = by - ay;
    // On dx and dy, as simplify-js does: the squared length of a tiny chord underflows to 0.
    const degenerate = dx === 0 && dy === 0;
    const sqLength = dx * dx + dy * dy;
    let farthest = -1;
    let sqFarthest = sqTolerance;
    for (let i = start + 1; i < end; i++) {
      const px = xs[i] as number;
      const py = ys[i] as number;
      let x = ax;
      let y = ay;
      if (!degenerate) {
        const t = ((px - ax) * dx + (py - ay) * dy) / sqLength;
        if (t > 1) {
          x = bx;
          y = by;
        } else if (t > 0) {
          x += dx * t;
          y += dy * t;
        }
      }
      const ex = px - x;
      const ey = py - y;
      const sqDistance = ex * ex + ey * ey;
      if (sqDistance > sqFarthest) {
        farthest = i;
        sqFarthest = sqDistance;
      }
    }
    if (farthest === -1) continue;
    keep[farthest] = 1;
    if (farthest - start > 1) spans.push(start, farthest);
    if (end - farthest > 1) spans.push(farthest, end);
  }
  return keep;
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
