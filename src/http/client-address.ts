import type { Context } from "hono";
import type { AppEnv } from "./app-env";

/**
 * The client's address of a request (`ports.clientIp`: the socket's peer, or what a trusted
 * proxy says), derived on first use and kept on the context: the ban check, the rate limiter
 * and the audit source of one request all ask for it.
 */
export function clientAddressOf(c: Context<AppEnv>): string | undefined {
  let address = c.get("clientAddress");
  if (address === undefined) {
    address = c.get("ports").clientIp(c.req.raw, c.env) ?? null;
    c.set("clientAddress", address);
  }
  return address ?? undefined;
}
