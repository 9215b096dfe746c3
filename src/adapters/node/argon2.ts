import { hashRaw } from "@node-rs/argon2";
import loadWasmArgon2 from "@phi-ag/argon2/node";
import { type Argon2Loader, wasmArgon2 } from "../argon2-hasher";

/**
 * Node's engine: the native binding, which hashes on libuv's thread pool, so a burst of sign-ins
 * does not hold up every other request the way the synchronous WebAssembly engine would.
 */
// The package's `const enum`s cannot be imported under verbatimModuleSyntax: their values.
const ARGON2ID = 2;
const VERSION_0X13 = 1;

export const nodeArgon2: Argon2Loader = async () => ({
  async hashRaw(password, { memoryCost, timeCost, parallelism, salt, hashLength }) {
    return hashRaw(password, {
      algorithm: ARGON2ID,
      version: VERSION_0X13,
      memoryCost,
      timeCost,
      parallelism,
      outputLen: hashLength,
      salt,
    });
  },
});

/** The Workers engine (WebAssembly) on Node, read from disk: to check both agree. */
export const nodeWasmArgon2: Argon2Loader = wasmArgon2(() => loadWasmArgon2());
