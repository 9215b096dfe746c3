import { ulid } from "ulidx";

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

/** @example newId("app") // "app_01JD3KXFG6QK7N8Y2M4V5W6X7Z" */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${ulid()}`;
}
