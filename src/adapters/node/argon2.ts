import loadArgon2 from "@phi-ag/argon2/node";
import type { Argon2Loader } from "../argon2-hasher";

/** Node (tsx, vitest) cannot import .wasm; the package's Node entry reads it from disk. */
export const nodeArgon2: Argon2Loader = () => loadArgon2();
