import { ulid as ulidOf } from "ulidx";

/** Prefixes of Heimdall's ids: readable in logs, sortable by creation time. */
export type IdPrefix =
  | "app"
  | "usr"
  | "role"
  | "key"
  | "cred"
  | "inv"
  | "aud"
  | "dev"
  | "pos"
  | "ses"
  | "rtk"
  | "ban"
  | "rcv"
  | "rpt"
  | "ocl"
  | "grt"
  | "plt"
  | "msg"
  | "atk";

const randomPool = new Uint8Array(4096);
let poolIndex = randomPool.length;

/**
 * Uniform in [0, 1) from bytes of the platform's CSPRNG, drawn 4 KiB at a time: ulidx's own source
 * asks `crypto.getRandomValues` for one byte per character, sixteen calls an id.
 */
function pooledRandom(): number {
  if (poolIndex === randomPool.length) {
    crypto.getRandomValues(randomPool);
    poolIndex = 0;
  }
  return (randomPool[poolIndex++] as number) / 256;
}

/** A ULID: 48 bits of milliseconds, then 80 random bits, Crockford base32. */
export function ulid(): string {
  return ulidOf(undefined, pooledRandom);
}

/** @example newId("app") // "app_01JD3KXFG6QK7N8Y2M4V5W6X7Z" */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}
