import type { Ports } from "../../ports";
import { liveRoomHost, type Principal } from "../../services/socket-auth";
import { createNodeHub } from "./ws-hub";

/**
 * The Node entry's live room, wired to the ports. `ports` is read when the room first needs
 * them, so the hub can itself be one of the ports (`realtime`).
 */
export function createLiveHub(
  ports: () => Ports,
  timing: { heartbeatMs?: number; sweepMs?: number } = {},
) {
  let host: ReturnType<typeof liveRoomHost> | undefined;
  const room = () => {
    host ??= liveRoomHost(ports());
    return host;
  };
  return createNodeHub<Principal>({
    ...timing,
    host: {
      authenticate: (credential, origin) => room().authenticate(credential, origin),
      deviceBelongsTo: (deviceId, appId) => room().deviceBelongsTo(deviceId, appId),
      isRevoked: (principal) => room().isRevoked(principal),
      now: () => room().now(),
      reportError: (message, error) => room().reportError(message, error),
    },
    logger: {
      debug: (m, f) => ports().logger.debug(m, f),
      info: (m, f) => ports().logger.info(m, f),
      warn: (m, f) => ports().logger.warn(m, f),
      error: (m, f) => ports().logger.error(m, f),
      child: (fields) => ports().logger.child(fields),
    },
  });
}
