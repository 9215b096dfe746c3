import { createRoute, z } from "@hono/zod-openapi";
import { PointSchema, PositionSchema } from "../../db/schema";
import { HistoryQuery } from "../../http/history-query";
import {
  bearerSecurity,
  errorResponses,
  jsonBody,
  jsonContent,
  resourceSchema,
  trackerSecurity,
} from "../../http/openapi";
import { listSchema } from "../../http/pagination";
import { guard } from "../../middleware/auth";
import { ingestAuth } from "../../middleware/ingest-auth";
import { MAX_POINTS } from "../../services/ingest";
import { SPEED_UNITS, type SpeedUnit } from "../../services/trackers";

const tags = ["GPS"];
const trackerTags = ["GPS: tracker apps"];
const ingest = [ingestAuth()];
const read = [guard({ scope: "app", permission: "gps:read" })];

const PositionResponse = resourceSchema(PositionSchema, "PositionResponse");

export const postPosition = createRoute({
  method: "post",
  path: "/gps",
  tags,
  summary: "Store one position",
  description:
    "With the device's secret (`Bearer dk_…`), or a user token / API key holding `gps:write` and the point's `device_id`. Answered once stored; re-sending the same device and timestamp answers 200 with the stored position.",
  security: bearerSecurity,
  middleware: ingest,
  request: { body: jsonBody(PointSchema) },
  responses: {
    201: jsonContent(PositionResponse, "Stored"),
    200: jsonContent(PositionResponse, "Already stored (a retry)"),
    ...errorResponses(400, 401, 403, 404, 415),
  },
});

export const BatchResultSchema = z
  .object({
    data: z.object({
      stored: z.number().int(),
      duplicates: z.number().int(),
      rejected: z.array(
        z.object({
          index: z.number().int(),
          reasons: z.array(z.object({ field: z.string(), reason: z.string() })),
        }),
      ),
      positions: z.array(PositionSchema),
    }),
  })
  .openapi("BatchResult");

export const postBatch = createRoute({
  method: "post",
  path: "/gps/batch",
  tags,
  summary: `Store up to ${MAX_POINTS} positions`,
  description:
    "Good points are stored even when others are rejected; `rejected` names each bad point by index with its reasons. All rejected: 400.",
  security: bearerSecurity,
  middleware: ingest,
  request: {
    body: jsonBody(
      z
        .object({ points: z.array(z.unknown()).min(1).max(MAX_POINTS) })
        .strict()
        .openapi("Batch"),
    ),
  },
  responses: {
    200: jsonContent(BatchResultSchema, "What was stored, skipped as a retry, or rejected"),
    ...errorResponses(400, 401, 403, 404, 413, 415),
  },
});

/** Names, by index of the item posted, the points of a tracker's request that were not stored. */
export const REJECTED_HEADER = "Heimdall-Rejected";

const trackerResponses = {
  200: {
    description: "Stored; the body is what the tracker app expects",
    headers: {
      [REJECTED_HEADER]: {
        description:
          "Present when some points were not stored: their indexes in the request (the item of a JSON array, of Overland's `locations`, of Traccar Client's `location` array), comma-separated",
        schema: { type: "string" as const, example: "2,5" },
      },
    },
  },
  ...errorResponses(400, 401, 403, 404),
};

const tracker = (method: "get" | "post", path: string, summary: string, description: string) =>
  createRoute({
    method,
    path,
    tags: trackerTags,
    summary,
    description,
    middleware: ingest,
    security: trackerSecurity,
    responses: trackerResponses,
  });

/** Which unit the `speed` query parameter is in: Traccar Client sends knots, OsmAnd m/s. */
const OsmandQuery = z.object({
  speed_unit: z
    .enum(Object.keys(SPEED_UNITS) as [SpeedUnit, ...SpeedUnit[]])
    .default("kn")
    .openapi({
      description:
        "The unit of `speed` in the query: `kn` (knots, what Traccar Client sends; the default), `mps` (m/s, what OsmAnd sends) or `kmh`. Traccar Client's JSON body is always m/s.",
    }),
});

const osmandRoute = (method: "get" | "post", summary: string, description: string) =>
  createRoute({
    ...tracker(method, "/gps/osmand", summary, description),
    request: { query: OsmandQuery },
  });

export const osmandGet = osmandRoute(
  "get",
  "OsmAnd / Traccar Client (query parameters)",
  "Traccar Client: `?key=dk_…&id=…&lat=…&lon=…&timestamp=…&speed=<knots>&bearing=…&altitude=…&accuracy=…&batt=…`. OsmAnd: `?key=dk_…&speed_unit=mps&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed={5}`. A negative speed, bearing, accuracy or battery means unknown and is stored as absent.",
);
export const osmandPost = osmandRoute(
  "post",
  "OsmAnd / Traccar Client (query parameters or Traccar Client's JSON body)",
  "Query parameters as for GET, or Traccar Client's JSON `{location:{timestamp, coords, battery}, device_id}` (`location` may be an array, when it syncs in batches).",
);
export const owntracks = tracker(
  "post",
  "/gps/owntracks",
  "OwnTracks (HTTP mode)",
  "One message or a JSON array of them; `_type: location` messages are stored, the others (and an empty body) carry no position. The device secret as the HTTP Basic password. Answered with `[]`.",
);
export const overland = tracker(
  "post",
  "/gps/overland",
  "Overland",
  'GeoJSON `{locations:[…]}`; the device secret as `Bearer` or `?access_token=`. Answered `{"result":"ok"}`, with `rejected` (`[{index, reasons}]`) when some locations were not stored. `speed`, `horizontal_accuracy` or `battery_level` of -1 mean unknown and are stored as absent.',
);
export const gpsloggerGet = tracker(
  "get",
  "/gps/gpslogger",
  "GPSLogger (custom URL)",
  "`?key=dk_…&lat=%LAT&lon=%LON&time=%TIME&spd=%SPD&acc=%ACC&alt=%ALT&dir=%DIR&batt=%BATT&device=%SER`",
);
export const gpsloggerPost = tracker(
  "post",
  "/gps/gpslogger",
  "GPSLogger (custom URL, POST)",
  "As for GET.",
);

export const currentPositions = createRoute({
  method: "get",
  path: "/gps/current",
  tags,
  summary: "The latest position of every device of the app",
  security: bearerSecurity,
  middleware: read,
  responses: {
    200: jsonContent(
      z
        .object({ data: z.array(PositionSchema), _links: z.object({ self: z.url() }) })
        .openapi("CurrentPositions"),
      "Latest positions",
    ),
    ...errorResponses(401, 403),
  },
});

/** Which positions to list (REST's query string, GraphQL's `positions` arguments). */
export const history = createRoute({
  method: "get",
  path: "/gps",
  tags,
  summary: "Position history, newest first",
  security: bearerSecurity,
  middleware: read,
  request: { query: HistoryQuery },
  responses: {
    200: jsonContent(listSchema(PositionSchema, "PositionList"), "A page of positions"),
    ...errorResponses(400, 401, 403),
  },
});

const PositionParams = z.object({ position_id: z.string().min(1).max(64) });

export const getPosition = createRoute({
  method: "get",
  path: "/gps/{position_id}",
  tags,
  summary: "One position",
  security: bearerSecurity,
  middleware: read,
  request: { params: PositionParams },
  responses: {
    200: jsonContent(PositionResponse, "The position"),
    ...errorResponses(401, 403, 404),
  },
});

export const deletePosition = createRoute({
  method: "delete",
  path: "/gps/{position_id}",
  tags,
  summary: "Delete one position",
  security: bearerSecurity,
  middleware: [guard({ scope: "app", permission: "gps:write" })],
  request: { params: PositionParams },
  responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404) },
});

/** `[lon, lat]` or `[lon, lat, altitude]`, as RFC 7946 orders a position. */
const GeoPosition = z.array(z.number()).min(2).max(3);
const trackProperties = {
  device_id: z.string(),
  points: z.number().int().openapi({ description: "Points drawn" }),
  points_in_range: z.number().int().openapi({ description: "Points stored in the range" }),
};

/**
 * A track as RFC 7946 allows it: a LineString needs two positions or more, so one point is a
 * `Point` and none an empty `FeatureCollection`.
 */
export const TrackGeoJson = z
  .union([
    z
      .object({
        type: z.literal("Feature"),
        geometry: z.object({
          type: z.literal("LineString"),
          coordinates: z.array(GeoPosition).min(2),
        }),
        properties: z.object({
          ...trackProperties,
          coordTimes: z.array(z.iso.datetime()).openapi({ description: "Each point's time" }),
        }),
      })
      .openapi("TrackLine", { description: "Two points or more" }),
    z
      .object({
        type: z.literal("Feature"),
        geometry: z.object({ type: z.literal("Point"), coordinates: GeoPosition }),
        properties: z.object({ ...trackProperties, time: z.iso.datetime() }),
      })
      .openapi("TrackPoint", { description: "One point in the range" }),
    z
      .object({ type: z.literal("FeatureCollection"), features: z.array(z.unknown()).max(0) })
      .openapi("TrackEmpty", { description: "No point in the range" }),
  ])
  .openapi("Track");

export const track = createRoute({
  method: "get",
  path: "/devices/{device_id}/track",
  tags,
  summary: "A device's track for a time range, as GeoJSON or GPX",
  description:
    "`simplify` (metres) thins the line with Douglas–Peucker, `max_points` caps it: a week of 1-second points draws without shipping every row. GeoJSON: a `LineString` feature; a range holding one point is a `Point` feature and an empty range an empty `FeatureCollection` (a LineString needs two positions, RFC 7946).",
  security: bearerSecurity,
  middleware: read,
  request: {
    params: z.object({ device_id: z.string().min(1).max(64) }),
    query: z.object({
      from: z.iso.datetime({ offset: true }),
      to: z.iso.datetime({ offset: true }),
      format: z.enum(["geojson", "gpx"]).default("geojson"),
      simplify: z.coerce
        .number()
        .min(0)
        .max(100_000)
        .optional()
        .openapi({ description: "Tolerance, metres" }),
      max_points: z.coerce.number().int().min(2).max(100_000).default(10_000),
    }),
  },
  responses: {
    200: {
      description: "The track",
      content: {
        "application/geo+json": { schema: TrackGeoJson },
        "application/gpx+xml": { schema: z.string() },
      },
    },
    ...errorResponses(400, 401, 403, 404),
  },
});

export const stats = createRoute({
  method: "get",
  path: "/stats",
  tags: ["Stats"],
  summary: "Counts for the app: devices, points per day, active devices, users, tokens issued",
  security: bearerSecurity,
  middleware: [guard({ scope: "app", permission: "stats:read" })],
  responses: {
    200: jsonContent(
      z
        .object({
          data: z.object({
            devices: z.number().int(),
            active_devices: z.number().int(),
            users: z.number().int(),
            positions: z.number().int(),
            points_per_day: z.array(z.object({ day: z.string(), points: z.number().int() })),
            tokens_issued_24h: z.number().int(),
          }),
        })
        .openapi("Stats"),
      "Counts",
    ),
    ...errorResponses(401, 403),
  },
});
