import type { IncomingMessage } from "node:http";
import type { Ports } from "../ports";
import { withDatabase } from "../ports/database";
import type { Services } from "../services/context";
import { liveRoomHost, type Principal } from "../services/socket-auth";
import { createNodeHub } from "./ws-hub";

/**
 * The Node entry's live room, wired to the ports and services. They are read when the room first
 * needs them, so the hub can itself be one of the ports (`realtime`). Sockets are admitted by the
 * client address REST requests are known by (`ports.clientIp`, `TRUST_PROXY`), against the same
 * ban list and `LIVE_MAX_SOCKETS_PER_IP`.
 */
export function createLiveHub(
  runtime: () => { ports: Ports; services: Services },
  timing: { heartbeatMs?: number; sweepMs?: number } = {},
) {
  let host: ReturnType<typeof liveRoomHost> | undefined;
  const room = () => {
    host ??= liveRoomHost(runtime().services, runtime().ports.db);
    return host;
  };
  return createNodeHub<Principal>({
    ...timing,
    host: {
      authenticate: (credential, origin) => room().authenticate(credential, origin),
      deviceBelongsTo: (deviceId, appId) => room().deviceBelongsTo(deviceId, appId),
      revokedAmong: (principals) => room().revokedAmong(principals),
      now: () => room().now(),
      reportError: (message, error) => room().reportError(message, error),
    },
    admission: {
      clientIp: (request) =>
        runtime().ports.clientIp(upgradeRequest(request), { incoming: request }),
      isBanned: (ip) =>
        withDatabase(runtime().ports.db, (db) => runtime().services.ipBans.isBanned(db, ip)),
      maxSocketsPerIp: () => runtime().ports.config.LIVE_MAX_SOCKETS_PER_IP,
    },
    logger: {
      debug: (m, f) => runtime().ports.logger.debug(m, f),
      info: (m, f) => runtime().ports.logger.info(m, f),
      warn: (m, f) => runtime().ports.logger.warn(m, f),
      error: (m, f) => runtime().ports.logger.error(m, f),
      child: (fields) => runtime().ports.logger.child(fields),
    },
  });
}

/** The upgrade as a fetch `Request` (its headers), what `ports.clientIp` reads with the socket. */
function upgradeRequest(request: IncomingMessage) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      headers.append(name, one);
    }
  }
  return new Request("http://localhost/v1/ws", { headers });
}
