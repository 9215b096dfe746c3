import { and, desc, eq, gt, inArray, or } from "drizzle-orm";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { apps, signingKeys } from "../db/schema";
import type { SigningAlgorithm } from "../db/schema/settings";
import type { Cipher } from "../lib/crypto";
import { ulid } from "../lib/ids";
import type { Clock, Database } from "../ports";
import { MAX_ACCESS_TOKEN_TTL_SECONDS } from "./settings";

export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: CryptoKey;
}

export interface VerificationKey {
  kid: string;
  alg: SigningAlgorithm;
  appId: string;
  appName: string;
  publicKey: CryptoKey;
  /** Set once the key is retired: tokens it signed are all expired after this. */
  publishUntil: Date | null;
}

const SIGNING_CACHE_MS = 60_000;
const UNKNOWN_KID_RETRY_MS = 30_000;
const MAX_CACHED_KEYS = 10_000;

/**
 * Per-app JWT signing keys: generated with `jose`, private halves encrypted at rest, public halves
 * cached per isolate so verifying a token reads no database once its key has been seen.
 * Every method takes the request's database handle; nothing here outlives the cache.
 */
export function createKeyRing(deps: { cipher: Cipher; clock: Clock }) {
  const signing = new Map<string, { key: SigningKey; loadedAt: number }>();
  const verification = new Map<string, VerificationKey>();
  const unknownKids = new Map<string, number>();

  const remember = (key: VerificationKey) => {
    if (verification.size >= MAX_CACHED_KEYS) verification.clear();
    verification.set(key.kid, key);
  };

  async function create(db: Database, appId: string, alg: SigningAlgorithm): Promise<SigningKey> {
    const { publicKey, privateKey } = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
    });
    const kid = ulid();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    const privateJwk = JSON.stringify(await exportJWK(privateKey));
    await db.insert(signingKeys).values({
      kid,
      app_id: appId,
      alg,
      public_jwk: publicJwk,
      private_jwk_encrypted: await deps.cipher.encrypt(privateJwk),
      created_at: deps.clock.now(),
    });
    return { kid, alg, privateKey };
  }

  async function load(row: typeof signingKeys.$inferSelect): Promise<SigningKey> {
    const jwk = JSON.parse(await deps.cipher.decrypt(row.private_jwk_encrypted)) as JWK;
    const privateKey = (await importJWK(jwk, row.alg)) as CryptoKey;
    return { kid: row.kid, alg: row.alg as SigningAlgorithm, privateKey };
  }

  return {
    /** The app's current key for `alg`, created on first use. */
    async signingKey(db: Database, appId: string, alg: SigningAlgorithm): Promise<SigningKey> {
      const now = deps.clock.now().getTime();
      const cached = signing.get(appId);
      if (cached && cached.key.alg === alg && now - cached.loadedAt < SIGNING_CACHE_MS) {
        return cached.key;
      }
      const [row] = await db
        .select()
        .from(signingKeys)
        .where(
          and(
            eq(signingKeys.app_id, appId),
            eq(signingKeys.status, "active"),
            eq(signingKeys.alg, alg),
          ),
        )
        .orderBy(desc(signingKeys.created_at))
        .limit(1);
      const key = row ? await load(row) : await create(db, appId, alg);
      signing.set(appId, { key, loadedAt: now });
      return key;
    },

    /**
     * The public key for a `kid`, from cache; an unknown kid reads the database at most once per
     * 30 s, so random kids cannot turn verification into database load.
     */
    async verificationKey(db: () => Database, kid: string): Promise<VerificationKey | undefined> {
      const now = deps.clock.now();
      const cached = verification.get(kid);
      if (cached) {
        return cached.publishUntil && cached.publishUntil <= now ? undefined : cached;
      }
      const triedAt = unknownKids.get(kid);
      if (triedAt !== undefined && now.getTime() - triedAt < UNKNOWN_KID_RETRY_MS) return undefined;

      const [row] = await db()
        .select({ key: signingKeys, appName: apps.name })
        .from(signingKeys)
        .innerJoin(apps, eq(apps.id, signingKeys.app_id))
        .where(eq(signingKeys.kid, kid))
        .limit(1);
      if (!row) {
        if (unknownKids.size >= MAX_CACHED_KEYS) unknownKids.clear();
        unknownKids.set(kid, now.getTime());
        return undefined;
      }
      const key: VerificationKey = {
        kid,
        alg: row.key.alg as SigningAlgorithm,
        appId: row.key.app_id,
        appName: row.appName,
        publicKey: (await importJWK(row.key.public_jwk as JWK, row.key.alg)) as CryptoKey,
        publishUntil: row.key.publish_until,
      };
      remember(key);
      return key.publishUntil && key.publishUntil <= now ? undefined : key;
    },

    /**
     * A new active key; the previous ones retire but stay published (and valid) until every
     * token they could have signed has expired.
     */
    async rotate(db: Database, appId: string, alg: SigningAlgorithm): Promise<SigningKey> {
      const now = deps.clock.now();
      const publishUntil = new Date(now.getTime() + MAX_ACCESS_TOKEN_TTL_SECONDS * 1000);
      const retired = await db
        .update(signingKeys)
        .set({ status: "retired", retired_at: now, publish_until: publishUntil })
        .where(and(eq(signingKeys.app_id, appId), eq(signingKeys.status, "active")))
        .returning({ kid: signingKeys.kid });
      for (const { kid } of retired) {
        const cached = verification.get(kid);
        if (cached) cached.publishUntil = publishUntil;
      }
      const key = await create(db, appId, alg);
      signing.set(appId, { key, loadedAt: now.getTime() });
      return key;
    },

    /** Public keys still in use (RFC 7517), of one app or of all apps. */
    async jwks(db: Database, appIds?: string[]): Promise<JWK[]> {
      const now = deps.clock.now();
      const published = or(eq(signingKeys.status, "active"), gt(signingKeys.publish_until, now));
      const rows = await db
        .select({ jwk: signingKeys.public_jwk })
        .from(signingKeys)
        .where(appIds ? and(inArray(signingKeys.app_id, appIds), published) : published)
        .orderBy(desc(signingKeys.created_at));
      return rows.map((row) => row.jwk as JWK);
    },
  };
}

export type KeyRing = ReturnType<typeof createKeyRing>;
