import { and, eq } from "drizzle-orm";
import { devices } from "../../db/schema";
import type { Ports } from "../../ports";
import { isPrincipalRevoked, type Principal, principalOf } from "../../services/socket-auth";
import { createNodeHub } from "./ws-hub";

/**
 * The Node entry's live room, wired to the ports: sockets authenticate like REST callers, and
 * `gps:<device_id>` is checked against the caller's app. `ports` is read when a socket needs it,
 * so the hub can itself be one of the ports (`realtime`).
 */
export function createLiveHub(
  ports: () => Ports,
  timing: { heartbeatMs?: number; revocationCheckMs?: number } = {},
) {
  return createNodeHub<Principal>({
    ...timing,
    authenticate: (credential, origin) => {
      const p = ports();
      return principalOf(
        { ...p, db: () => p.db.session().db },
        credential,
        p.config.PUBLIC_URL ?? origin,
      );
    },
    async deviceBelongsTo(deviceId, appId) {
      const [row] = await ports()
        .db.session()
        .db.select({ id: devices.id })
        .from(devices)
        .where(and(eq(devices.id, deviceId), eq(devices.app_id, appId)));
      return Boolean(row);
    },
    isRevoked: (principal) => isPrincipalRevoked(ports().revocations, principal),
    logger: {
      debug: (m, f) => ports().logger.debug(m, f),
      info: (m, f) => ports().logger.info(m, f),
      warn: (m, f) => ports().logger.warn(m, f),
      error: (m, f) => ports().logger.error(m, f),
      child: (fields) => ports().logger.child(fields),
    },
    now: () => ports().clock.now().getTime(),
  });
}
