import type { Context } from "hono";
import type { AppEnv } from "../http/app-env";
import { clientAddressOf } from "../http/client-address";
import { ApiError } from "../lib/errors";
import type { Services } from "../services/context";

/**
 * Health checks answer anyone (they disclose no data), so they never wait for the ban list to
 * load: with the database unreachable that wait would come on top of their own 3 s bound.
 */
const unchecked = new Set(["/health", "/v1/health"]);

/** Banned addresses get 403 before any other work (the ban list is cached per isolate). */
export function ipBanCheck(services: Pick<Services, "ipBans">) {
  return async function rejectBannedAddress(c: Context<AppEnv>) {
    if (unchecked.has(c.req.path)) return;
    const ip = clientAddressOf(c);
    if (ip && (await services.ipBans.isBanned(c.get("db"), ip))) {
      throw new ApiError("forbidden", "Requests from this address are banned");
    }
  };
}
