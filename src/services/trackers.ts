/**
 * The wire formats of tracker apps people already carry, turned into Heimdall points
 * (`timestamp` ISO 8601, metres, m/s, degrees, battery %). Each parser returns the tracker's own
 * device id, when it sends one, and raw points for the usual validation.
 */
export interface Parsed {
  externalId?: string | undefined;
  /** One per item posted; `null` for an item that carries no position (OwnTracks' other messages). */
  points: Array<Record<string, unknown> | null>;
}

const KMH_TO_MPS = 1 / 3.6;

type Params = Record<string, string | undefined>;

/**
 * `"12.5"` → 12.5; absent → undefined; unparsable → NaN (validation refuses it). Only text is
 * parsed: Number() of a deeply nested array overflows the stack.
 */
function num(value: unknown): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number") return value;
  return typeof value === "string" ? Number(value) : Number.NaN;
}

const round = (value: number | undefined, digits = 3) =>
  value === undefined || Number.isNaN(value) ? value : Number(value.toFixed(digits));

/**
 * Unix seconds, Unix milliseconds or ISO 8601, as trackers variously send time. Anything but text
 * or a number is left as sent, for validation to refuse (String() of a deep array overflows).
 */
function timestampOf(value: unknown): unknown {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string" && typeof value !== "number") return value;
  const text = String(value);
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    const date = new Date(n > 1e12 ? n : n * 1000);
    // Past what a Date holds (year 275760): left as sent, for validation to refuse.
    return Number.isNaN(date.getTime()) ? text : date.toISOString();
  }
  const parsed = Date.parse(text);
  return Number.isNaN(parsed) ? text : new Date(parsed).toISOString();
}

/** Drops undefined fields so optional ones stay absent. */
function point(fields: Record<string, unknown>) {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

/** A level of 0..1 (Traccar, Overland) as percent. */
const levelToPercent = (value: unknown) => {
  const level = num(value);
  return level === undefined ? undefined : round(level <= 1 ? level * 100 : level, 1);
};

/** The speed units a tracker URL may name with `speed_unit`, as factors to m/s. */
export const SPEED_UNITS = { kn: 0.514444, mps: 1, kmh: KMH_TO_MPS } as const;
export type SpeedUnit = keyof typeof SPEED_UNITS;

/** One of Traccar Client's JSON locations (`{timestamp, coords, battery, is_moving, …}`). */
function traccarLocation(given: unknown) {
  const location = (given !== null && typeof given === "object" ? given : {}) as {
    timestamp?: unknown;
    coords?: Record<string, unknown>;
    battery?: { level?: unknown };
    is_moving?: unknown;
    odometer?: unknown;
    event?: unknown;
  };
  const coords = location.coords ?? {};
  return point({
    timestamp: timestampOf(location.timestamp),
    latitude: num(coords.latitude),
    longitude: num(coords.longitude),
    altitude: num(coords.altitude),
    speed: num(coords.speed),
    heading: num(coords.heading),
    accuracy: num(coords.accuracy),
    battery: levelToPercent(location.battery?.level),
    attributes: point({
      is_moving: location.is_moving,
      odometer: location.odometer,
      event: location.event,
    }),
  });
}

/**
 * OsmAnd / Traccar Client: query parameters (GET or POST) with speed in `speedUnit` (Traccar
 * Client sends knots, OsmAnd m/s), or Traccar Client's JSON body: one location, or an array of
 * them when it syncs in batches.
 */
export function parseOsmand(query: Params, body: unknown, speedUnit: SpeedUnit = "kn"): Parsed {
  if (body && typeof body === "object" && "location" in body) {
    const { location, device_id } = body as { location?: unknown; device_id?: unknown };
    return {
      externalId:
        typeof device_id === "string" || typeof device_id === "number"
          ? String(device_id)
          : undefined,
      points: (Array.isArray(location) ? location : [location]).map(traccarLocation),
    };
  }
  const speed = num(query.speed);
  return {
    externalId: query.id ?? query.deviceid,
    points: [
      point({
        timestamp: timestampOf(query.timestamp),
        latitude: num(query.lat),
        longitude: num(query.lon),
        altitude: num(query.altitude),
        speed: speed === undefined ? undefined : round(speed * SPEED_UNITS[speedUnit]),
        heading: num(query.bearing ?? query.heading),
        accuracy: num(query.accuracy ?? query.hdop),
        battery: num(query.batt),
      }),
    ],
  };
}

/**
 * OwnTracks HTTP mode: one message or an array of them. Only `_type: location` messages carry a
 * position; the others (waypoints, transitions, an empty body when a friend is removed) are
 * `null` in `points`, so the indexes of the points stay those of the messages posted.
 */
export function parseOwnTracks(body: unknown, headers: { device?: string | undefined }): Parsed {
  const messages = (Array.isArray(body) ? body : body === undefined ? [] : [body]).map(
    (message) =>
      (message !== null && typeof message === "object" ? message : {}) as Record<string, unknown>,
  );
  const tid = messages.find((message) => typeof message.tid === "string")?.tid as
    | string
    | undefined;
  return {
    externalId: headers.device ?? tid,
    points: messages.map((message) => {
      if (message._type !== "location") return null;
      const velocity = num(message.vel);
      return point({
        timestamp: timestampOf(message.tst),
        latitude: num(message.lat),
        longitude: num(message.lon),
        altitude: num(message.alt),
        speed: velocity === undefined ? undefined : round(velocity * KMH_TO_MPS),
        heading: num(message.cog),
        accuracy: num(message.acc),
        battery: num(message.batt),
      });
    }),
  };
}

/** Overland: a batch of GeoJSON `Feature<Point>` locations. */
export function parseOverland(body: unknown): Parsed {
  const locations = Array.isArray((body as { locations?: unknown })?.locations)
    ? (body as { locations: unknown[] }).locations
    : [];
  let externalId: string | undefined;
  const points = locations.map((feature) => {
    const { geometry, properties: given } = (feature ?? {}) as {
      geometry?: { coordinates?: unknown };
      properties?: unknown;
    };
    // Whatever the JSON holds: `properties: null` or `coordinates: 5` must not throw.
    const properties = (given !== null && typeof given === "object" ? given : {}) as Record<
      string,
      unknown
    >;
    if (typeof properties.device_id === "string") externalId ??= properties.device_id;
    const [longitude, latitude] = Array.isArray(geometry?.coordinates) ? geometry.coordinates : [];
    return point({
      timestamp: timestampOf(properties.timestamp),
      latitude: num(latitude),
      longitude: num(longitude),
      altitude: num(properties.altitude),
      speed: num(properties.speed),
      accuracy: num(properties.horizontal_accuracy),
      battery: levelToPercent(properties.battery_level),
      attributes: point({
        motion: properties.motion,
        battery_state: properties.battery_state,
        vertical_accuracy: properties.vertical_accuracy,
      }),
    });
  });
  return { externalId, points };
}

/** GPSLogger's custom URL, e.g. `?lat=%LAT&lon=%LON&time=%TIME&spd=%SPD…&device=%SER`. */
export function parseGpsLogger(query: Params): Parsed {
  return {
    externalId: query.device ?? query.ser ?? query.id,
    points: [
      point({
        timestamp: timestampOf(query.time ?? query.timestamp),
        latitude: num(query.lat),
        longitude: num(query.lon),
        altitude: num(query.alt),
        speed: num(query.spd),
        heading: num(query.dir),
        accuracy: num(query.acc),
        battery: num(query.batt),
      }),
    ],
  };
}
