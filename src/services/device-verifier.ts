import { eq } from "drizzle-orm";
import { apps, devices } from "../db/schema";
import { sha256Hex } from "../lib/crypto";
import { createTtlCache } from "../lib/ttl-cache";
import type { Clock, Database } from "../ports";

export const DEVICE_SECRET_PREFIX = "dk_";
const CACHE_TTL_MS = 30_000;
const MAX_CACHED = 50_000;

/** What ingest needs to know about the device a secret belongs to. */
export interface DeviceIdentity {
  id: string;
  appId: string;
  externalId: string | null;
  /** Whether its app still takes data (an archived app's devices are refused). */
  appActive: boolean;
}

/**
 * Resolves `dk_…` secrets to devices with a per-isolate cache (30 s), so a tracker posting every
 * second reads the database twice a minute for its identity, not every time.
 */
export function createDeviceVerifier(deps: { clock: Clock }) {
  const cache = createTtlCache<DeviceIdentity | null>({
    ttlMs: CACHE_TTL_MS,
    maxEntries: MAX_CACHED,
    now: () => deps.clock.now().getTime(),
  });

  async function load(db: Database, hash: string): Promise<DeviceIdentity | null> {
    const [row] = await db
      .select({
        id: devices.id,
        appId: devices.app_id,
        externalId: devices.external_id,
        appStatus: apps.status,
      })
      .from(devices)
      .innerJoin(apps, eq(apps.id, devices.app_id))
      .where(eq(devices.secret_hash, hash));
    if (!row) return null;
    return {
      id: row.id,
      appId: row.appId,
      externalId: row.externalId,
      appActive: row.appStatus === "active",
    };
  }

  return {
    async verify(db: () => Database, secret: string): Promise<DeviceIdentity | undefined> {
      if (!secret.startsWith(DEVICE_SECRET_PREFIX)) return undefined;
      const hash = await sha256Hex(secret);
      return (await cache.get(hash, () => load(db(), hash))) ?? undefined;
    },
    /** Drops a device from the cache (secret rotated, device deleted). */
    forget(deviceId: string) {
      cache.forget((device) => device?.id === deviceId);
    },
  };
}

export type DeviceVerifier = ReturnType<typeof createDeviceVerifier>;
