import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../http/app-env";
import { ApiError } from "../lib/errors";
import { DEVICE_SECRET_PREFIX, type DeviceIdentity } from "../services/device-verifier";
import { authorizationOf, guard } from "./auth";

/**
 * A device secret wherever a tracker app can put one: `Authorization: Bearer dk_…`, the password
 * of HTTP Basic (OwnTracks), or `?key=` / `?access_token=` in the URL (OsmAnd, Traccar Client
 * and GPSLogger keep the query of the configured URL; Overland sends `access_token`).
 */
function deviceSecretOf(c: Context<AppEnv>): string | undefined {
  const header = authorizationOf(c) ?? "";
  const bearer = /^Bearer\s+(dk_\S+)$/i.exec(header)?.[1];
  if (bearer) return bearer;
  if (/^Basic\s+/i.test(header)) {
    try {
      const decoded = atob(header.replace(/^Basic\s+/i, "").trim());
      const password = decoded.slice(decoded.indexOf(":") + 1);
      if (password.startsWith(DEVICE_SECRET_PREFIX)) return password;
    } catch {
      // Not Basic we can read: the guard below answers 401.
    }
  }
  const fromUrl = c.req.query("key") ?? c.req.query("access_token");
  return fromUrl?.startsWith(DEVICE_SECRET_PREFIX) ? fromUrl : undefined;
}

/**
 * The request's device secret and the device it belongs to (none if unknown), looked up once per
 * request: rate limiting asks first, the ingest route's authentication next. Undefined when the
 * request carries no device secret.
 */
export function deviceOf(c: Context<AppEnv>): Promise<DeviceIdentity | undefined> | undefined {
  let lookup = c.get("deviceLookup");
  if (lookup === undefined) {
    const secret = deviceSecretOf(c);
    lookup = secret ? c.get("services").devices.verify(c.get("db"), secret) : null;
    c.set("deviceLookup", lookup);
  }
  return lookup ?? undefined;
}

const userIngest = guard({ scope: "app", permission: "gps:write" });

/**
 * Ingest routes take a device's own secret (the device is then known) or, like any app route, a
 * user token or API key holding `gps:write` (the points then name their `device_id`).
 */
export function ingestAuth() {
  return createMiddleware<AppEnv>(async function ingestAuthMiddleware(c, next) {
    const lookup = deviceOf(c);
    if (!lookup) return userIngest(c, next);
    const device = await lookup;
    if (!device) {
      throw new ApiError("unauthorized", "Unknown device secret", {
        headers: { "WWW-Authenticate": `Basic realm="heimdall"` },
      });
    }
    if (!device.appActive) throw new ApiError("forbidden", "The device's app is archived");
    c.set("device", device);
    return next();
  });
}
