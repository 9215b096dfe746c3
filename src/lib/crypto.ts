import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { base64url } from "jose";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The prefix of every secret Heimdall hands out, so logs and error reports can recognise one
 * wherever it turns up (`src/lib/redact.ts`). A new kind of secret must be listed here.
 */
export const SECRET_PREFIXES = [
  "hk_admin_",
  "rt_",
  "pk_",
  "sk_live_",
  "svc_",
  "dk_",
  "inv_tok_",
  "oac_",
  // The id of a consent form, sealed inside it; spent once in the revocation store.
  "atx_",
  "ocs_",
  // Mailed to a user: email verification, password reset, sign-in link, email change.
  "emv_",
  "pwr_",
  "otl_",
  "emc_",
] as const;

export type SecretPrefix = (typeof SECRET_PREFIXES)[number];

/**
 * A random secret with a readable prefix, e.g. `rt_…`, `pk_…` (256 bits, base64url); no prefix
 * only for secrets that never leave the server.
 */
export function randomSecret(prefix: SecretPrefix | "", bytes = 32): string {
  return `${prefix}${base64url.encode(crypto.getRandomValues(new Uint8Array(bytes)))}`;
}

/**
 * SHA-256 of a secret, hex. Secrets are stored only as these hashes. Computed in JavaScript: for
 * inputs this short, WebCrypto's `digest` costs ~5× more on Node (algorithm normalisation and a
 * job on the thread pool per call), on every request that presents a secret.
 */
export async function sha256Hex(value: string): Promise<string> {
  return bytesToHex(sha256(encoder.encode(value)));
}

/** Compares two strings without an early exit, so timing says nothing about where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  let difference = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    difference |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return difference === 0;
}

/**
 * AES-256-GCM under a key derived (HKDF-SHA256) from a secret, for data Heimdall must read back:
 * signing keys' private halves, a refresh token's successor during its reuse interval.
 * Output: `v1.<iv>.<ciphertext>`, base64url.
 */
export function createCipher(secret: string, purpose: string) {
  const key = (async () => {
    const material = await crypto.subtle.importKey("raw", encoder.encode(secret), "HKDF", false, [
      "deriveKey",
    ]);
    return crypto.subtle.deriveKey(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: encoder.encode("heimdall"),
        info: encoder.encode(purpose),
      },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["encrypt", "decrypt"],
    );
  })();

  return {
    async encrypt(plaintext: string): Promise<string> {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const sealed = await crypto.subtle.encrypt(
        { name: "AES-GCM", iv },
        await key,
        encoder.encode(plaintext),
      );
      return `v1.${base64url.encode(iv)}.${base64url.encode(new Uint8Array(sealed))}`;
    },
    async decrypt(sealed: string): Promise<string> {
      const [version, iv, data] = sealed.split(".");
      if (version !== "v1" || !iv || !data) throw new Error("unknown ciphertext format");
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: new Uint8Array(base64url.decode(iv)) },
        await key,
        new Uint8Array(base64url.decode(data)),
      );
      return decoder.decode(plain);
    },
  };
}

export type Cipher = ReturnType<typeof createCipher>;

/**
 * Whether `secret` is the current secret of a credential (`"current"`), or the one before its
 * last rotation while that one's grace period lasts (`"previous"`). Both comparisons are
 * constant-time.
 */
export async function matchesRotatedSecret(
  secret: string,
  stored: {
    secret_hash: string | null;
    previous_secret_hash: string | null;
    previous_secret_expires_at: Date | null;
  },
  now: Date,
): Promise<"current" | "previous" | false> {
  const presented = await sha256Hex(secret);
  const current = stored.secret_hash !== null && timingSafeEqual(presented, stored.secret_hash);
  const previous =
    stored.previous_secret_hash !== null &&
    stored.previous_secret_expires_at !== null &&
    stored.previous_secret_expires_at > now &&
    timingSafeEqual(presented, stored.previous_secret_hash);
  return current ? "current" : previous ? "previous" : false;
}
