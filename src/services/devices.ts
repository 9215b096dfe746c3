import { and, asc, eq, inArray } from "drizzle-orm";
import { pageOf } from "../db/page";
import { devices } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import type { AppRecord } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { DEVICE_SECRET_PREFIX, type DeviceVerifier } from "./device-verifier";

export type DeviceRecord = typeof devices.$inferSelect;
export type DeviceView = Omit<DeviceRecord, "secret_hash">;

export function deviceView(row: DeviceRecord): DeviceView {
  const { secret_hash: _hash, ...fields } = row;
  return fields;
}

export async function findDevice(db: Database, appId: string, id: string): Promise<DeviceRecord> {
  const [row] = await db
    .select()
    .from(devices)
    .where(and(eq(devices.app_id, appId), eq(devices.id, id)));
  if (!row) throw new ApiError("not_found", "No such device in this app");
  return row;
}

/** The app's devices among `ids`; 4xx naming the unknown ones is the caller's business. */
export async function devicesByIds(db: Database, appId: string, ids: string[]) {
  if (ids.length === 0) return [];
  return db
    .select()
    .from(devices)
    .where(and(eq(devices.app_id, appId), inArray(devices.id, ids)));
}

export async function listDevices(
  db: Database,
  appId: string,
  page: { limit: number; offset: number },
) {
  const where = eq(devices.app_id, appId);
  const { rows, total } = await pageOf(db, devices, { where, order: [asc(devices.id)], page });
  return { data: rows.map(deviceView), total };
}

const conflictOnExternalId = () =>
  new ApiError("conflict", "Another device of this app has that external_id");

export async function createDevice(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    name: string;
    external_id?: string | undefined;
    expected_interval_seconds: number;
    metadata?: Record<string, unknown> | undefined;
  },
) {
  const secret = randomSecret(DEVICE_SECRET_PREFIX);
  const secretHash = await sha256Hex(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [inserted] = await tx
        .insert(devices)
        .values({
          id: newId("dev"),
          app_id: app.id,
          name: input.name,
          // A user who registers a device owns its positions (their export, their erasure).
          owner_id: ctx.audit.actorType === "user" ? ctx.audit.actorId : null,
          external_id: input.external_id ?? null,
          expected_interval_seconds: input.expected_interval_seconds,
          metadata: input.metadata ?? {},
          secret_hash: secretHash,
          secret_prefix: secret.slice(0, 10),
          created_at: now,
          updated_at: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!inserted) throw conflictOnExternalId();
      return inserted;
    },
    (inserted) => ({
      appId: app.id,
      action: "device.created",
      target: { type: "device", id: inserted.id },
      metadata: { name: input.name },
    }),
  );
  return { ...deviceView(row), secret };
}

export async function updateDevice(
  ctx: ServiceContext,
  app: AppRecord,
  id: string,
  changes: {
    name?: string | undefined;
    external_id?: string | null | undefined;
    expected_interval_seconds?: number | undefined;
    metadata?: Record<string, unknown> | undefined;
  },
) {
  await findDevice(ctx.db, app.id, id);
  if (changes.external_id) {
    const [taken] = await ctx.db
      .select({ id: devices.id })
      .from(devices)
      .where(and(eq(devices.app_id, app.id), eq(devices.external_id, changes.external_id)));
    if (taken && taken.id !== id) throw conflictOnExternalId();
  }
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [updated] = await tx
        .update(devices)
        .set({ ...changes, updated_at: now })
        .where(eq(devices.id, id))
        .returning();
      if (!updated) throw new ApiError("not_found", "No such device in this app");
      return updated;
    },
    {
      appId: app.id,
      action: "device.updated",
      target: { type: "device", id },
      metadata: { fields: Object.keys(changes) },
    },
  );
  return deviceView(row);
}

/** A new secret, answered once; the old one stops working at once. */
export async function rotateDeviceSecret(
  ctx: ServiceContext,
  verifier: DeviceVerifier,
  app: AppRecord,
  id: string,
) {
  await findDevice(ctx.db, app.id, id);
  const secret = randomSecret(DEVICE_SECRET_PREFIX);
  const secretHash = await sha256Hex(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [updated] = await tx
        .update(devices)
        .set({ secret_hash: secretHash, secret_prefix: secret.slice(0, 10), updated_at: now })
        .where(eq(devices.id, id))
        .returning();
      if (!updated) throw new ApiError("not_found", "No such device in this app");
      return updated;
    },
    { appId: app.id, action: "device.secret_rotated", target: { type: "device", id } },
  );
  verifier.forget(id);
  return { ...deviceView(row), secret };
}

export async function deleteDevice(
  ctx: ServiceContext,
  verifier: DeviceVerifier,
  app: AppRecord,
  id: string,
) {
  const device = await findDevice(ctx.db, app.id, id);
  await audited(ctx, (tx) => tx.delete(devices).where(eq(devices.id, id)), {
    appId: app.id,
    action: "device.deleted",
    target: { type: "device", id },
    metadata: { name: device.name },
  });
  verifier.forget(id);
}
