import Argon2 from "@phi-ag/argon2";
import { type Argon2Loader, wasmArgon2 } from "../argon2-hasher";

/**
 * workerd refuses to compile wasm bytes at run time; wrangler bundles this import as a
 * precompiled `WebAssembly.Module`. (`as string` keeps tsc from resolving a .wasm file; esbuild
 * strips it and still sees a literal it can bundle.)
 */
export const workersArgon2: Argon2Loader = wasmArgon2(async () => {
  const wasm = (await import("@phi-ag/argon2/argon2.wasm" as string)).default as WebAssembly.Module;
  return new Argon2(await WebAssembly.instantiate(wasm));
});
