import { and, desc, eq, gte, inArray, lte, type SQL, sql } from "drizzle-orm";
import { auditLogs, devices, positions, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { PgBinaryArray } from "../lib/pg-binary-array";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { type PositionRecord, serializePosition } from "./ingest";
import { type Thinning, type TrackPoint, thinnedIndices } from "./tracks";

export type Position = ReturnType<typeof serializePosition>;

/**
 * A device's positions oldest first, as the `(device_id, timestamp desc nulls last)` index reads
 * backwards. A plain `asc` (nulls last) cannot use it, and Postgres sorts the device's rows.
 */
export const chronological = sql`${positions.timestamp} asc nulls first`;

export interface PositionFilter {
  deviceId?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  /** `minLon,minLat,maxLon,maxLat`. */
  bbox?: string | undefined;
}

/**
 * The latest position of every device of an app (or of the devices named), newest first: one
 * index probe per device on `(device_id, timestamp desc)`, not a scan.
 */
export async function currentPositions(
  ctx: ServiceContext,
  appId: string,
  deviceIds?: readonly string[],
): Promise<Position[]> {
  if (deviceIds?.length === 0) return [];
  const only = deviceIds ? sql`and d.id in ${deviceIds}` : sql``;
  const result = await ctx.db.execute<Record<string, unknown>>(sql`
    select p.* from ${devices} d
    cross join lateral (
      select * from ${positions} where ${positions.device_id} = d.id
      order by ${positions.timestamp} desc limit 1
    ) p
    where d.app_id = ${appId} ${only}
    order by p.timestamp desc`);
  return (result as unknown as { rows: Array<Record<string, unknown>> }).rows.map(fromRaw);
}

/** A raw `select p.*` row (snake_case columns, driver-specific types) as the API's position. */
function fromRaw(row: Record<string, unknown>): Position {
  const iso = (value: unknown) => new Date(value as string | Date).toISOString();
  const float = (value: unknown) => (value === null || value === undefined ? null : Number(value));
  return {
    id: String(row.id),
    app_id: String(row.app_id),
    device_id: String(row.device_id),
    timestamp: iso(row.timestamp),
    latitude: Number(row.latitude),
    longitude: Number(row.longitude),
    altitude: float(row.altitude),
    speed: float(row.speed),
    heading: float(row.heading),
    accuracy: float(row.accuracy),
    battery: float(row.battery),
    attributes: (typeof row.attributes === "string"
      ? JSON.parse(row.attributes)
      : row.attributes) as Record<string, unknown>,
    received_at: iso(row.received_at),
  };
}

/** An app's positions, newest first, filtered by device, time range and bounding box. */
export async function listPositions(
  ctx: ServiceContext,
  appId: string,
  filter: PositionFilter,
  page: { limit: number; offset: number },
): Promise<{ data: Position[]; total: number }> {
  const conditions: SQL[] = [eq(positions.app_id, appId)];
  if (filter.deviceId) conditions.push(eq(positions.device_id, filter.deviceId));
  if (filter.from) conditions.push(gte(positions.timestamp, new Date(filter.from)));
  if (filter.to) conditions.push(lte(positions.timestamp, new Date(filter.to)));
  if (filter.bbox) {
    const [minLon, minLat, maxLon, maxLat] = filter.bbox.split(",").map(Number) as [
      number,
      number,
      number,
      number,
    ];
    conditions.push(
      gte(positions.longitude, minLon),
      lte(positions.longitude, maxLon),
      gte(positions.latitude, minLat),
      lte(positions.latitude, maxLat),
    );
  }
  const where = and(...conditions);
  const [rows, total] = await Promise.all([
    ctx.db
      .select()
      .from(positions)
      .where(where)
      .orderBy(desc(positions.timestamp))
      .limit(page.limit)
      .offset(page.offset),
    ctx.db.$count(positions, where),
  ]);
  return { data: rows.map(serializePosition), total };
}

export async function findPosition(
  ctx: ServiceContext,
  appId: string,
  id: string,
): Promise<PositionRecord> {
  const [row] = await ctx.db
    .select()
    .from(positions)
    .where(and(eq(positions.app_id, appId), eq(positions.id, id)));
  if (!row) throw new ApiError("not_found", "No such position in this app");
  return row;
}

/** What is stored for a device at a time: the answer to a point sent again. */
export async function storedPositionAt(
  ctx: ServiceContext,
  deviceId: string,
  timestamp: string,
): Promise<PositionRecord> {
  const [row] = await ctx.db
    .select()
    .from(positions)
    .where(and(eq(positions.device_id, deviceId), eq(positions.timestamp, new Date(timestamp))));
  if (!row) throw new Error("a duplicate position that is not stored");
  return row;
}

/** Deletes a position of the app (audited); 404 if the app has none of that id. */
export async function deletePosition(ctx: ServiceContext, appId: string, id: string) {
  const row = await findPosition(ctx, appId, id);
  await audited(ctx, (tx) => tx.delete(positions).where(eq(positions.id, row.id)), {
    appId: row.app_id,
    action: "position.deleted",
    target: { type: "position", id: row.id },
    metadata: { device_id: row.device_id, timestamp: row.timestamp.toISOString() },
  });
}

/** More rows than this in one range are refused: narrow the range instead. */
const MAX_TRACK_ROWS = 2_000_000;

/**
 * A device of the app and its points between two times, oldest first, thinned for drawing (see
 * {@link thinnedIndices}), and how many the range holds; 404 if the app has no such device, 422 past
 * {@link MAX_TRACK_ROWS}.
 */
export async function deviceTrack(
  ctx: ServiceContext,
  appId: string,
  deviceId: string,
  range: { from: string; to: string },
  thinning: Thinning,
): Promise<{ device: { id: string; name: string }; points: TrackPoint[]; inRange: number }> {
  // One row of four arrays in Postgres's binary form (see PgBinaryArray): no text conversion of
  // 4 values a point on the server, no parsing of a row a point (a Date for each timestamp) in
  // the driver, which for a day of points cost more than the read itself. The arrays follow the
  // subquery's order, as Postgres aggregates a sorted subquery's rows (an ORDER BY in each
  // aggregate would sort the range once more per column).
  const rangeRows = ctx.db
    .select({
      timestamp: positions.timestamp,
      latitude: positions.latitude,
      longitude: positions.longitude,
      altitude: positions.altitude,
    })
    .from(positions)
    .where(
      and(
        eq(positions.device_id, deviceId),
        gte(positions.timestamp, new Date(range.from)),
        lte(positions.timestamp, new Date(range.to)),
      ),
    )
    .orderBy(chronological)
    .limit(MAX_TRACK_ROWS + 1)
    .as("range");
  // The device is looked up in the same statement: the range is read only for a device of the
  // app, and a request makes one round trip.
  const result = await ctx.db.execute(sql`
    select ${devices.id}, ${devices.name}, track.* from ${devices}
    cross join lateral (
      select count(*)::int as in_range,
        array_send(array_agg(${rangeRows.timestamp})) as times,
        array_send(array_agg(${rangeRows.latitude})) as latitudes,
        array_send(array_agg(${rangeRows.longitude})) as longitudes,
        array_send(array_agg(${rangeRows.altitude})) as altitudes
      from ${rangeRows}
    ) track
    where ${devices.app_id} = ${appId} and ${devices.id} = ${deviceId}`);
  const [track] = (result as unknown as { rows: RawTrack[] }).rows;
  if (!track) throw new ApiError("not_found", "No such device in this app");
  const device = { id: track.id, name: track.name };
  if (!track.times) return { device, points: [], inRange: 0 };
  if (track.in_range > MAX_TRACK_ROWS) {
    throw new ApiError(
      "unprocessable",
      `More than ${MAX_TRACK_ROWS} points in the range; narrow it`,
    );
  }
  const times = new PgBinaryArray(track.times);
  const latitudes = new PgBinaryArray(track.latitudes).float8s();
  const longitudes = new PgBinaryArray(track.longitudes).float8s();
  const altitudes = new PgBinaryArray(track.altitudes);
  const points = thinnedIndices(latitudes, longitudes, thinning).map((i) => ({
    timestamp: new Date(times.epochMilliseconds(i) as number),
    latitude: latitudes[i] as number,
    longitude: longitudes[i] as number,
    altitude: altitudes.float8(i),
  }));
  return { device, points, inRange: track.in_range };
}

/** The track's one row: the device, the range's size and its columns (`array_send`, null when empty). */
interface RawTrack {
  id: string;
  name: string;
  in_range: number;
  times: Uint8Array | null;
  latitudes: Uint8Array;
  longitudes: Uint8Array;
  altitudes: Uint8Array;
}

/** An app's figures: devices (online), users, positions, points per day this week, tokens in 24 h. */
export async function appStats(ctx: ServiceContext, appId: string) {
  const { db } = ctx;
  const now = ctx.clock.now();
  const weekAgo = new Date(now.getTime() - 7 * 86_400_000);
  const dayAgo = new Date(now.getTime() - 86_400_000);
  const [deviceCount, active, userCount, positionCount, perDay, tokens] = await Promise.all([
    db.$count(devices, eq(devices.app_id, appId)),
    db.$count(devices, and(eq(devices.app_id, appId), eq(devices.status, "online"))),
    db.$count(users, eq(users.app_id, appId)),
    db.$count(positions, eq(positions.app_id, appId)),
    db
      .select({
        day: sql<string>`to_char(date_trunc('day', ${positions.timestamp} at time zone 'UTC'), 'YYYY-MM-DD')`,
        points: sql<number>`count(*)::int`,
      })
      .from(positions)
      .where(and(eq(positions.app_id, appId), gte(positions.timestamp, weekAgo)))
      .groupBy(sql`1`)
      .orderBy(sql`1`),
    db.$count(
      auditLogs,
      and(
        eq(auditLogs.app_id, appId),
        gte(auditLogs.timestamp, dayAgo),
        inArray(auditLogs.action, [
          "auth.login.succeeded",
          "token.refreshed",
          "auth.client.succeeded",
          "invite.accepted",
        ]),
      ),
    ),
  ]);
  return {
    devices: deviceCount,
    active_devices: active,
    users: userCount,
    positions: positionCount,
    points_per_day: perDay.map((row) => ({ day: row.day, points: Number(row.points) })),
    tokens_issued_24h: tokens,
  };
}
