import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl } from "../../http/links";
import { publishAfterResponse } from "../../http/live-publish";
import { paginated } from "../../http/pagination";
import { ApiError } from "../../lib/errors";
import { appInScope } from "../../middleware/auth";
import { assertSomeAccepted, ingestPoints, serializePosition } from "../../services/ingest";
import * as positionsService from "../../services/positions";
import * as trackers from "../../services/trackers";
import { trackToGeoJson, trackToGpx } from "../../services/tracks";
import type * as routes from "./gps.routes";
import { REJECTED_HEADER } from "./gps.routes";

const positionLink = (c: Context<AppEnv>, id: string) => absoluteUrl(c, `/v1/gps/${id}`);

/**
 * Stores raw points for the request's device (its secret) or, with a user token or API key, for
 * the devices the points name; announces what was stored once the answer is sent.
 */
async function ingest(c: Context<AppEnv>, raws: unknown[], externalId?: string) {
  const device = c.get("device");
  const appId = device?.appId ?? appInScope(c).id;
  const result = await ingestPoints(c.var.services, { appId, device }, raws, externalId);
  publishAfterResponse(c, appId, result.events);
  return result;
}

export const postPosition: RouteHandler<typeof routes.postPosition, AppEnv> = async (c) => {
  const body = c.req.valid("json");
  const result = await ingest(c, [body]);
  assertSomeAccepted(result, 1);
  const stored = result.stored[0];
  if (stored) {
    return c.json(
      { data: serializePosition(stored), _links: { self: positionLink(c, stored.id) } },
      201,
    );
  }
  // A retry: answer with what is stored for that device and time.
  const deviceId = c.get("device")?.id ?? body.device_id ?? "";
  const existing = await positionsService.storedPositionAt(
    c.var.services,
    deviceId,
    body.timestamp,
  );
  return c.json(
    { data: serializePosition(existing), _links: { self: positionLink(c, existing.id) } },
    200,
  );
};

export const postBatch: RouteHandler<typeof routes.postBatch, AppEnv> = async (c) => {
  const { points } = c.req.valid("json");
  const result = await ingest(c, points);
  assertSomeAccepted(result, points.length);
  return c.json(
    {
      data: {
        stored: result.stored.length,
        duplicates: result.duplicates,
        rejected: result.rejected,
        positions: result.stored.map(serializePosition),
      },
    },
    200,
  );
};

/** The request body as JSON, form fields, or nothing (an empty body), whichever the tracker sent. */
async function bodyOf(
  c: Context<AppEnv>,
): Promise<{ json?: unknown; form: Record<string, string> }> {
  const type = c.req.header("content-type") ?? "";
  if (type.includes("json")) {
    const text = await c.req.text();
    if (text.trim() === "") return { form: {} };
    try {
      return { json: JSON.parse(text), form: {} };
    } catch {
      throw new ApiError("bad_request", "Malformed JSON in request body");
    }
  }
  if (type.includes("form")) {
    // A multipart body that does not parse makes the platform's formData() throw a TypeError.
    const form = await c.req.parseBody().catch(() => {
      throw new ApiError("bad_request", "Malformed form body");
    });
    return { form: Object.fromEntries(Object.entries(form).map(([k, v]) => [k, String(v)])) };
  }
  return { form: {} };
}

/**
 * Stores what a tracker app posted and names, by the index of the item posted, every point not
 * stored: in the `Heimdall-Rejected` header of every tracker answer (the apps' own answers have
 * no room for it), and in the body where the app's answer is an object. Nothing valid: a 400.
 */
async function trackerIngest(c: Context<AppEnv>, parsed: trackers.Parsed) {
  const posted = parsed.points.flatMap((point, index) => (point ? [{ point, index }] : []));
  if (posted.length === 0) return [];
  const result = await ingest(
    c,
    posted.map(({ point }) => point),
    parsed.externalId,
  );
  const rejected = result.rejected.map((r) => ({ ...r, index: posted[r.index]?.index ?? r.index }));
  assertSomeAccepted({ ...result, rejected }, posted.length);
  if (rejected.length > 0) c.header(REJECTED_HEADER, rejected.map((r) => r.index).join(","));
  return rejected;
}

const osmand: RouteHandler<typeof routes.osmandGet, AppEnv> = async (c) => {
  const { json, form } = await bodyOf(c);
  const { speed_unit } = c.req.valid("query");
  await trackerIngest(c, trackers.parseOsmand({ ...form, ...c.req.query() }, json, speed_unit));
  return c.text("OK", 200);
};
export const osmandGet = osmand;
export const osmandPost: RouteHandler<typeof routes.osmandPost, AppEnv> = osmand;

export const owntracks: RouteHandler<typeof routes.owntracks, AppEnv> = async (c) => {
  const { json } = await bodyOf(c);
  await trackerIngest(c, trackers.parseOwnTracks(json, { device: c.req.header("x-limit-d") }));
  // OwnTracks expects a JSON array (of messages for the device; none here).
  return c.json([], 200);
};

export const overland: RouteHandler<typeof routes.overland, AppEnv> = async (c) => {
  const { json } = await bodyOf(c);
  const rejected = await trackerIngest(c, trackers.parseOverland(json));
  // Overland deletes what it sent once it reads `result: ok`; other fields it ignores.
  return c.json(rejected.length > 0 ? { result: "ok", rejected } : { result: "ok" }, 200);
};

const gpslogger: RouteHandler<typeof routes.gpsloggerGet, AppEnv> = async (c) => {
  const { form } = await bodyOf(c);
  await trackerIngest(c, trackers.parseGpsLogger({ ...form, ...c.req.query() }));
  return c.text("OK", 200);
};
export const gpsloggerGet = gpslogger;
export const gpsloggerPost: RouteHandler<typeof routes.gpsloggerPost, AppEnv> = gpslogger;

export const currentPositions: RouteHandler<typeof routes.currentPositions, AppEnv> = async (c) => {
  const data = await positionsService.currentPositions(c.var.services, appInScope(c).id);
  return c.json({ data, _links: { self: absoluteUrl(c, "/v1/gps/current") } }, 200);
};

export const history: RouteHandler<typeof routes.history, AppEnv> = async (c) => {
  const { limit, offset, device_id, from, to, bbox } = c.req.valid("query");
  const { data, total } = await positionsService.listPositions(
    c.var.services,
    appInScope(c).id,
    { deviceId: device_id, from, to, bbox },
    { limit, offset },
  );
  return c.json(paginated(c, data, total, { limit, offset }), 200);
};

export const getPosition: RouteHandler<typeof routes.getPosition, AppEnv> = async (c) => {
  const row = await positionsService.findPosition(
    c.var.services,
    appInScope(c).id,
    c.req.valid("param").position_id,
  );
  return c.json({ data: serializePosition(row), _links: { self: positionLink(c, row.id) } }, 200);
};

export const deletePosition: RouteHandler<typeof routes.deletePosition, AppEnv> = async (c) => {
  await positionsService.deletePosition(
    c.var.services,
    appInScope(c).id,
    c.req.valid("param").position_id,
  );
  return c.body(null, 204);
};

export const track: RouteHandler<typeof routes.track, AppEnv> = async (c) => {
  const { device_id } = c.req.valid("param");
  const query = c.req.valid("query");
  const { device, points, inRange } = await positionsService.deviceTrack(
    c.var.services,
    appInScope(c).id,
    device_id,
    query,
    { toleranceMetres: query.simplify, maxPoints: query.max_points },
  );
  if (query.format === "gpx") {
    return c.body(trackToGpx(device, points), 200, { "Content-Type": "application/gpx+xml" });
  }
  return c.body(JSON.stringify(trackToGeoJson(device.id, points, inRange)), 200, {
    "Content-Type": "application/geo+json",
  });
};

export const stats: RouteHandler<typeof routes.stats, AppEnv> = async (c) => {
  const data = await positionsService.appStats(c.var.services, appInScope(c).id);
  return c.json({ data }, 200);
};
