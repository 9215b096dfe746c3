import { and, eq, getTableColumns, sql } from "drizzle-orm";
import { preparedPerDatabase } from "../db/prepared";
import { devices, type Point, PointSchema, positions } from "../db/schema";
import { ApiError, type ErrorDetail } from "../lib/errors";
import { newId } from "../lib/ids";
import type { LiveEvent } from "../ports";
import { audited, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import type { DeviceIdentity } from "./device-verifier";
import { devicesByIds } from "./devices";

export type PositionRecord = typeof positions.$inferSelect;

/** The most points one request may carry, whichever its format. */
export const MAX_POINTS = 1000;

/** A point is refused when its time is further ahead than this (clock skew allowance). */
const MAX_FUTURE_MS = 10 * 60_000;

export interface RejectedPoint {
  index: number;
  reasons: ErrorDetail[];
}

export interface IngestResult {
  /** Newly stored positions, in the order posted. */
  stored: PositionRecord[];
  /** Points already stored before (same device and timestamp): acknowledged, not stored twice. */
  duplicates: number;
  rejected: RejectedPoint[];
  /** What the app's live rooms are to be told: devices coming online, then the new positions. */
  events: LiveEvent[];
}

/** Validates one raw point; the reasons are per field, like the API's validation errors. */
export function validatePoint(
  raw: unknown,
  now: Date,
): { point: Point } | { reasons: ErrorDetail[] } {
  const parsed = PointSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      reasons: parsed.error.issues.map((issue) => ({
        field: issue.path.join(".") || "(point)",
        reason: issue.message,
      })),
    };
  }
  if (Date.parse(parsed.data.timestamp) > now.getTime() + MAX_FUTURE_MS) {
    return { reasons: [{ field: "timestamp", reason: "is in the future" }] };
  }
  return { point: parsed.data };
}

/**
 * Stores points of known devices of one app, acknowledging only what is stored: one statement
 * ({@link storing}), so a Worker sends one query over HTTP. Devices that report become `online`
 * (audited). Answers the live events of what changed, each on the app's `gps` channel and the
 * device's own, for the caller to publish once stored.
 */
export async function storePoints(
  ctx: ServiceContext,
  appId: string,
  points: Array<{ deviceId: string; point: Point }>,
): Promise<Omit<IngestResult, "rejected">> {
  if (points.length === 0) return { stored: [], duplicates: 0, events: [] };
  const now = ctx.clock.now();
  const rows = points.map(({ deviceId, point }) => ({
    id: newId("pos"),
    app_id: appId,
    device_id: deviceId,
    timestamp: new Date(point.timestamp),
    latitude: point.latitude,
    longitude: point.longitude,
    altitude: point.altitude ?? null,
    speed: point.speed ?? null,
    heading: point.heading ?? null,
    accuracy: point.accuracy ?? null,
    battery: point.battery ?? null,
    attributes: point.attributes ?? {},
  }));
  const outcome = await storing(ctx.db).execute({
    deviceIds: [...new Set(points.map((p) => p.deviceId))],
    now: now.toISOString(),
    ...columnsOf(rows),
  });
  // A row per stored point, or one for a device none of whose points was new; `seen.status` is
  // the device's status before this ingest.
  const statusBefore = new Map(outcome.map((row) => [row.seen.id, row.seen.status]));
  const stored = outcome.flatMap((row) => row.inserted ?? []);
  const cameOnline = [...statusBefore].filter(([, status]) => status !== "online");
  const events: LiveEvent[] = [];
  for (const [deviceId] of cameOnline) {
    await recordAudit(
      ctx,
      { appId, action: "device.online", target: { type: "device", id: deviceId } },
      now,
    );
    events.push(
      ...deviceEvents("DeviceStatus", deviceId, {
        device_id: deviceId,
        status: "online",
        at: now.toISOString(),
      }),
    );
  }
  const byId = new Map(stored.map((row) => [row.id, row]));
  const ordered = rows.flatMap((row) => byId.get(row.id) ?? []);
  for (const position of ordered) {
    events.push(...deviceEvents("Position", position.device_id, serializePosition(position)));
  }
  return { stored: ordered, duplicates: rows.length - ordered.length, events };
}

/**
 * The statement of {@link storePoints}, prepared once per database: each column of the points one
 * array parameter, so any number of points is one statement. It stores the points, marks their
 * devices seen and says which were not online before. The devices' rows are locked as they are
 * read, so of two ingests for one device only the first sees it come online; the insert reads
 * the count of `seen` first, so every lock is taken before any point is inserted whatever plan
 * the server picks, and two ingests of one point never each hold what the other waits for (a
 * device's lock, the point's index entry). A point already stored is skipped by the unique index.
 */
const storing = preparedPerDatabase((db) => {
  const p = (name: string) => sql.placeholder(name);
  const column = (name: keyof ReturnType<typeof columnsOf>, type: string) =>
    sql`${p(name)}::${sql.raw(type)}[]`;
  const before = db.$with("before", { id: devices.id, status: devices.status }).as(sql`
    select id, status from ${devices} where id = any(${p("deviceIds")}::text[]) for update`);
  const seen = db.$with("seen", { id: devices.id, status: devices.status }).as(sql`
    update ${devices} set status = 'online', last_seen_at = ${p("now")}::timestamptz
    from before where ${devices.id} = before.id
    returning ${devices.id}, before.status`);
  const inserted = db.$with("inserted", getTableColumns(positions)).as(sql`
    insert into ${positions} (id, app_id, device_id, timestamp, latitude, longitude, altitude,
      speed, heading, accuracy, battery, attributes, received_at)
    select point.*, ${p("now")}::timestamptz
    from (select count(*) from seen) as locked,
      unnest(${column("id", "text")}, ${column("app_id", "text")},
        ${column("device_id", "text")}, ${column("timestamp", "timestamptz")},
        ${column("latitude", "float8")}, ${column("longitude", "float8")},
        ${column("altitude", "float8")}, ${column("speed", "float8")},
        ${column("heading", "float8")}, ${column("accuracy", "float8")},
        ${column("battery", "float8")}, ${column("attributes", "jsonb")}) as point
    on conflict do nothing
    returning *`);
  return db
    .with(before, seen, inserted)
    .select()
    .from(seen)
    .leftJoin(inserted, eq(inserted.device_id, seen.id))
    .prepare("ingest_store");
});

/** The points as the statement's parameters: one array per column, JSON as text. */
function columnsOf(rows: Array<typeof positions.$inferInsert>) {
  return {
    id: rows.map((row) => row.id),
    app_id: rows.map((row) => row.app_id),
    device_id: rows.map((row) => row.device_id),
    timestamp: rows.map((row) => row.timestamp.toISOString()),
    latitude: rows.map((row) => row.latitude),
    longitude: rows.map((row) => row.longitude),
    altitude: rows.map((row) => row.altitude ?? null),
    speed: rows.map((row) => row.speed ?? null),
    heading: rows.map((row) => row.heading ?? null),
    accuracy: rows.map((row) => row.accuracy ?? null),
    battery: rows.map((row) => row.battery ?? null),
    attributes: rows.map((row) => JSON.stringify(row.attributes ?? {})),
  };
}

/** One event about a device, on the app's `gps` channel and on the device's own. */
export function deviceEvents(
  type: LiveEvent["type"],
  deviceId: string,
  data: unknown,
): LiveEvent[] {
  return [
    { type, channel: "gps", data },
    { type, channel: `gps:${deviceId}`, data },
  ];
}

/** A position as the API and the live rooms send it. */
export function serializePosition(row: PositionRecord) {
  return {
    ...row,
    timestamp: row.timestamp.toISOString(),
    received_at: row.received_at.toISOString(),
  };
}

/**
 * The tracker's own id is kept as the device's external id the first time it is seen, unless
 * another device of the app already has it.
 */
export async function adoptExternalId(
  ctx: ServiceContext,
  device: { id: string; appId: string; externalId: string | null },
  externalId: string | undefined,
) {
  if (!externalId || device.externalId) return;
  const id = externalId.slice(0, 128);
  const [taken] = await ctx.db
    .select({ id: devices.id })
    .from(devices)
    .where(and(eq(devices.app_id, device.appId), eq(devices.external_id, id)));
  if (taken) return;
  await audited(
    ctx,
    (tx) => tx.update(devices).set({ external_id: id }).where(eq(devices.id, device.id)),
    {
      appId: device.appId,
      action: "device.updated",
      target: { type: "device", id: device.id },
      metadata: { fields: ["external_id"] },
    },
  );
  device.externalId = id;
}

/**
 * Validates raw points and stores the good ones: for `device` (authenticated by its secret) or,
 * for a user token or API key, for the devices of the app the points name by `device_id` (or
 * the tracker's `externalId`). Bad points and unknown devices are named in `rejected`.
 */
export async function ingestPoints(
  ctx: ServiceContext,
  scope: { appId: string; device?: DeviceIdentity | undefined },
  raws: unknown[],
  externalId?: string,
): Promise<IngestResult> {
  const { appId, device } = scope;
  // One multi-row insert: past this, the database's limit on bound parameters refuses it.
  if (raws.length > MAX_POINTS) {
    throw new ApiError("validation_error", `At most ${MAX_POINTS} points per request`, {
      details: [{ field: "points", reason: `at most ${MAX_POINTS} items` }],
    });
  }
  const now = ctx.clock.now();
  let fallbackDeviceId: string | undefined;
  if (!device && externalId) {
    const [byExternal] = await ctx.db
      .select({ id: devices.id })
      .from(devices)
      .where(and(eq(devices.app_id, appId), eq(devices.external_id, externalId)));
    fallbackDeviceId = byExternal?.id;
  }

  const rejected: RejectedPoint[] = [];
  const valid: Array<{ index: number; deviceId: string; point: Point }> = [];
  for (const [index, raw] of raws.entries()) {
    const checked = validatePoint(raw, now);
    if ("reasons" in checked) {
      rejected.push({ index, reasons: checked.reasons });
      continue;
    }
    const named = checked.point.device_id;
    const deviceId = device?.id ?? named ?? fallbackDeviceId;
    if (device && named && named !== device.id) {
      rejected.push({
        index,
        reasons: [{ field: "device_id", reason: "differs from the device of the secret" }],
      });
    } else if (!deviceId) {
      rejected.push({
        index,
        reasons: [
          { field: "device_id", reason: "required when posting with a user token or API key" },
        ],
      });
    } else {
      valid.push({ index, deviceId, point: checked.point });
    }
  }

  let accepted = valid;
  if (!device) {
    const known = new Set(
      (await devicesByIds(ctx, appId, [...new Set(valid.map((v) => v.deviceId))])).map((d) => d.id),
    );
    accepted = valid.filter((v) => {
      if (known.has(v.deviceId)) return true;
      rejected.push({
        index: v.index,
        reasons: [{ field: "device_id", reason: "no such device in this app" }],
      });
      return false;
    });
  }
  const result = await storePoints(ctx, appId, accepted);
  if (device) await adoptExternalId(ctx, device, externalId);
  rejected.sort((a, b) => a.index - b.index);
  return { ...result, rejected };
}

/** Nothing valid at all is a 400 naming every bad point. */
export function assertSomeAccepted(result: Pick<IngestResult, "rejected">, total: number) {
  if (total > 0 && result.rejected.length === total) {
    throw new ApiError("validation_error", "No valid point in the request", {
      details: result.rejected.flatMap(({ index, reasons }) =>
        reasons.map(({ field, reason }) => ({ field: `points[${index}].${field}`, reason })),
      ),
    });
  }
}
