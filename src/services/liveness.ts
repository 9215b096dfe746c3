import { and, eq, inArray, lt, sql } from "drizzle-orm";
import { apps, devices, positions } from "../db/schema";
import type { LiveEvent } from "../ports";
import { recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { deviceEvents } from "./ingest";
import { resolveSettings } from "./settings";

/**
 * Marks `offline` every online device that has missed its expected reporting interval; each
 * change is stored and audited. Answers, per device gone offline, the live events its app's
 * rooms are to be told, for the caller to publish.
 */
export async function sweepOfflineDevices(ctx: ServiceContext) {
  const now = ctx.clock.now();
  const overdue = await ctx.db
    .update(devices)
    .set({ status: "offline" })
    .where(
      and(
        eq(devices.status, "online"),
        lt(
          sql`${devices.last_seen_at} + make_interval(secs => ${devices.expected_interval_seconds})`,
          now,
        ),
      ),
    )
    .returning({ id: devices.id, appId: devices.app_id, lastSeenAt: devices.last_seen_at });
  const announcements: Array<{ appId: string; events: LiveEvent[] }> = [];
  for (const device of overdue) {
    await recordAudit(
      ctx,
      {
        appId: device.appId,
        action: "device.offline",
        target: { type: "device", id: device.id },
        metadata: { last_seen_at: device.lastSeenAt?.toISOString() ?? null },
      },
      now,
    );
    announcements.push({
      appId: device.appId,
      events: deviceEvents("DeviceStatus", device.id, {
        device_id: device.id,
        status: "offline",
        at: now.toISOString(),
      }),
    });
  }
  return announcements;
}

/**
 * Deletes positions older than each app's `gps_retention_days` (apps without it keep
 * everything), in batches of `batchSize` rows, at most `maxBatches` per app and run so one run
 * stays short; the next run continues.
 */
export async function applyRetention(
  ctx: ServiceContext,
  options: { batchSize?: number; maxBatches?: number } = {},
) {
  const batchSize = options.batchSize ?? 10_000;
  const maxBatches = options.maxBatches ?? 20;
  const now = ctx.clock.now();
  const withRetention = await ctx.db
    .select({ id: apps.id, settings: apps.settings })
    .from(apps)
    .where(sql`${apps.settings} ? 'gps_retention_days'`);
  let deleted = 0;
  for (const app of withRetention) {
    const days = resolveSettings(app.settings).gps_retention_days;
    if (!days) continue;
    const cutoff = new Date(now.getTime() - days * 86_400_000);
    for (let batch = 0; batch < maxBatches; batch++) {
      const old = ctx.db
        .select({ id: positions.id })
        .from(positions)
        .where(and(eq(positions.app_id, app.id), lt(positions.timestamp, cutoff)))
        .limit(batchSize);
      const removed = await ctx.db
        .delete(positions)
        .where(inArray(positions.id, old))
        .returning({ id: positions.id });
      deleted += removed.length;
      if (removed.length < batchSize) break;
    }
  }
  return deleted;
}
