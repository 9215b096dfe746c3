import type Argon2 from "@phi-ag/argon2";
import { Argon2Type, Argon2Version } from "@phi-ag/argon2";
import type { PasswordHasher } from "../ports/passwords";

/**
 * Argon2id (version 0x13) as a runtime computes it: the raw hash of a password for given
 * parameters and salt. Node's is native and runs off the event loop; Workers' is WebAssembly.
 * The hasher builds and parses the PHC strings, so hashes move freely between engines.
 */
export interface Argon2Engine {
  hashRaw(
    password: string,
    options: Argon2Params & { salt: Uint8Array; hashLength: number },
  ): Promise<Uint8Array>;
}

/** Loads an engine the way the runtime can: one loader per entry, called on first use. */
export type Argon2Loader = () => Promise<Argon2Engine>;

/** Argon2id cost parameters; memoryCost is in KiB. */
export interface Argon2Params {
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane. */
export const DEFAULT_ARGON2_PARAMS: Readonly<Argon2Params> = {
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

const SALT_LENGTH = 16;
const HASH_LENGTH = 32;

function withDefaults(params: Partial<Argon2Params>): Argon2Params {
  return {
    memoryCost: params.memoryCost ?? DEFAULT_ARGON2_PARAMS.memoryCost,
    timeCost: params.timeCost ?? DEFAULT_ARGON2_PARAMS.timeCost,
    parallelism: params.parallelism ?? DEFAULT_ARGON2_PARAMS.parallelism,
  };
}

/**
 * A stored hash to verify against when the user does not exist, so that a login costs the same
 * either way: pass the hasher's own params. Its hash is all zeros, which no password produces.
 */
export function dummyHash(params: Partial<Argon2Params> = {}): string {
  const { memoryCost: m, timeCost: t, parallelism: p } = withDefaults(params);
  return `$argon2id$v=19$m=${m},t=${t},p=${p}$${"A".repeat(22)}$${"A".repeat(43)}`;
}

/** {@link dummyHash} at the default params. */
export const DUMMY_HASH = dummyHash();

const encoder = new TextEncoder();

/**
 * @phi-ag/argon2 0.5.28 copies the password as UTF-8 but passes `password.length` (UTF-16 code
 * units) as its byte length, so non-ASCII passwords get truncated ("é" and "è" hash alike).
 * Padding by the missing byte count makes that length the UTF-8 byte length; the padding lies
 * past it and is never hashed. A known-answer test against the reference CLI guards this.
 */
function withByteLength(password: string): string {
  const missing = encoder.encode(password).length - password.length;
  return missing > 0 ? password + "\0".repeat(missing) : password;
}

/** @phi-ag/argon2's WebAssembly engine, loaded by `load` (each runtime gets the wasm its way). */
export function wasmArgon2(load: () => Promise<Argon2>): Argon2Loader {
  return async () => {
    const argon2 = await load();
    return {
      // Synchronous inside: on the caller's thread for the whole hash.
      async hashRaw(password, options) {
        return argon2.hash(withByteLength(password), {
          type: Argon2Type.Argon2id,
          version: Argon2Version.Version13,
          ...options,
        }).hash;
      },
    };
  };
}

/** Unpadded standard base64, as PHC strings carry salts and hashes. */
function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "");
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Compares every byte, with no early exit, so the time taken does not leak where they differ. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const PHC =
  /^\$argon2id\$v=19\$m=(\d{1,9}),t=(\d{1,9}),p=(\d{1,9})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/**
 * Argon2id password hashing with PHC strings, on the engine `loadEngine` gives (native on Node,
 * WebAssembly precompiled by the bundler on workerd). The engine is loaded on first use;
 * a failed load is retried on the next call rather than cached.
 */
export function createPasswordHasher(
  loadEngine: Argon2Loader,
  params: Partial<Argon2Params> = {},
): PasswordHasher {
  const current = withDefaults(params);
  let engine: Promise<Argon2Engine> | undefined;
  const loadArgon2 = () => {
    engine ??= loadEngine();
    engine.catch(() => {
      engine = undefined;
    });
    return engine;
  };
  const { memoryCost: m, timeCost: t, parallelism: p } = current;

  return {
    dummyHash: dummyHash(current),
    async hash(password) {
      const argon2 = await loadArgon2();
      const salt = crypto.getRandomValues(new Uint8Array(SALT_LENGTH));
      const hash = await argon2.hashRaw(password, { ...current, hashLength: HASH_LENGTH, salt });
      return `$argon2id$v=19$m=${m},t=${t},p=${p}$${toBase64(salt)}$${toBase64(hash)}`;
    },

    async verify(stored, password) {
      const invalid = { valid: false, needsRehash: false };
      const match = PHC.exec(stored);
      if (!match) return invalid;
      const [, m, t, p, salt64, hash64] = match;
      const used: Argon2Params = { memoryCost: +m!, timeCost: +t!, parallelism: +p! };
      // Outside the try: failing to load Argon2 must throw, not pass for a wrong password.
      const argon2 = await loadArgon2();
      try {
        const salt = fromBase64(salt64!);
        const expected = fromBase64(hash64!);
        const hash = await argon2.hashRaw(password, {
          ...used,
          hashLength: expected.length,
          salt,
        });
        const valid = constantTimeEqual(hash, expected);
        const needsRehash =
          valid &&
          (used.memoryCost !== current.memoryCost ||
            used.timeCost !== current.timeCost ||
            used.parallelism !== current.parallelism ||
            salt.length < SALT_LENGTH ||
            expected.length !== HASH_LENGTH);
        return { valid, needsRehash };
      } catch {
        // Bad base64, or parameters Argon2 rejects (salt under 8 bytes, memory under 8·p KiB…).
        return invalid;
      }
    },
  };
}
