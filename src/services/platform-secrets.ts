import { eq } from "drizzle-orm";
import type { Config } from "../config";
import { platformSettings } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import type { Database } from "../ports";

export interface PlatformSecrets {
  adminKeyHash: string;
  keyEncryptionSecret: string;
  /** Set only on the start that generated the admin key: print it once, it is not stored. */
  generatedAdminKey?: string;
}

/**
 * The admin key's hash and the key-encryption secret. From the environment when set (always in
 * production); otherwise, for a laptop, generated on first start and kept in the database: the
 * admin key only as its hash.
 */
export async function resolvePlatformSecrets(
  db: Database,
  config: Config,
): Promise<PlatformSecrets> {
  if (config.APP_ENV === "production" && (!config.ADMIN_API_KEY || !config.KEY_ENCRYPTION_SECRET)) {
    throw new Error("ADMIN_API_KEY and KEY_ENCRYPTION_SECRET are required in production");
  }
  let generatedAdminKey: string | undefined;
  let adminKeyHash = config.ADMIN_API_KEY ? await sha256Hex(config.ADMIN_API_KEY) : undefined;
  if (!adminKeyHash) {
    adminKeyHash = await stored(db, "admin_key_hash");
    if (!adminKeyHash) {
      const candidate = randomSecret("hk_admin_");
      const candidateHash = await sha256Hex(candidate);
      adminKeyHash = await storeOnce(db, "admin_key_hash", candidateHash);
      if (adminKeyHash === candidateHash) generatedAdminKey = candidate;
    }
  }
  const keyEncryptionSecret =
    config.KEY_ENCRYPTION_SECRET ??
    (await stored(db, "dev_key_encryption_secret")) ??
    (await storeOnce(db, "dev_key_encryption_secret", randomSecret("", 32)));
  return { adminKeyHash, keyEncryptionSecret, ...(generatedAdminKey ? { generatedAdminKey } : {}) };
}

async function stored(db: Database, key: string) {
  const [row] = await db.select().from(platformSettings).where(eq(platformSettings.key, key));
  return row?.value;
}

/** Inserts unless another process won the race; returns whichever value is stored. */
async function storeOnce(db: Database, key: string, value: string): Promise<string> {
  await db.insert(platformSettings).values({ key, value }).onConflictDoNothing();
  return (await stored(db, key)) ?? value;
}
