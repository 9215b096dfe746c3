/**
 * The live room's protocol (seed 001's messages), written once for both hosts: the Durable
 * Object in `party/gps-room.ts` and the Node hub in `src/adapters/node/ws-hub.ts`. Runtime-free:
 * it sees text in, sends messages out, and asks its host to authenticate and authorize.
 *
 * Client → server: `{type:"Ping"}`, `{type:"Auth", token}`, `{type:"Subscribe", channel}`,
 * `{type:"Unsubscribe", channel}`; channels `gps` (every device of the app) and
 * `gps:<device_id>`. Server → client: `Pong`, `Authenticated`, `Subscribed`, `Unsubscribed`,
 * `Position`, `DeviceStatus`, `Error {code, message}`. Nothing is streamed to a socket that has
 * not authenticated (DESIGN.md).
 */

export interface Principal {
  appId: string;
  subjectId: string;
  permissions: string[];
}

export interface PeerState<P extends Principal = Principal> {
  readonly principal?: P;
  readonly channels: readonly string[];
  /** Messages received in the current one-second window, for the per-socket rate limit. */
  readonly window: { readonly startedAt: number; readonly count: number };
}

export interface Peer<P extends Principal = Principal> {
  readonly id: string;
  state: PeerState<P>;
  send(message: ServerMessage): void;
}

export type ServerMessage =
  | { type: "Pong" }
  | { type: "Authenticated"; app: string; subject: string }
  | { type: "Subscribed" | "Unsubscribed"; channel: string }
  | { type: "Position" | "DeviceStatus"; channel: string; data: unknown }
  | { type: "Error"; code: ErrorCode; message: string };

type ErrorCode =
  | "invalid_message"
  | "message_too_large"
  | "rate_limited"
  | "unauthenticated"
  | "invalid_token"
  | "forbidden"
  | "invalid_channel";

export interface RoomHost<P extends Principal> {
  /** A ticket, access token or API key → its principal, or undefined. */
  authenticate(credential: string): Promise<P | undefined>;
  /** Whether a device belongs to the app (for `gps:<device_id>`). */
  deviceBelongsTo(deviceId: string, appId: string): Promise<boolean>;
  now(): number;
}

export const MAX_MESSAGE_BYTES = 4096;
export const MAX_MESSAGES_PER_SECOND = 20;
const CHANNEL = /^gps(?::dev_[0-9A-Z]{26})?$/;

export function newPeerState<P extends Principal>(principal?: P): PeerState<P> {
  return { ...(principal ? { principal } : {}), channels: [], window: { startedAt: 0, count: 0 } };
}

const error = (code: ErrorCode, message: string): ServerMessage => ({
  type: "Error",
  code,
  message,
});

function hasGpsRead(principal: Principal) {
  return principal.permissions.some((permission) => {
    const [resource, action] = permission.split(":");
    return (resource === "*" || resource === "gps") && (action === "*" || action === "read");
  });
}

/** Handles one message from a peer; every problem is answered with an `Error`, never a crash. */
export async function handleMessage<P extends Principal>(
  peer: Peer<P>,
  raw: string,
  host: RoomHost<P>,
): Promise<void> {
  const now = host.now();
  const current = peer.state.window;
  const window =
    now - current.startedAt >= 1000
      ? { startedAt: now, count: 1 }
      : { startedAt: current.startedAt, count: current.count + 1 };
  peer.state = { ...peer.state, window };
  if (window.count > MAX_MESSAGES_PER_SECOND) {
    return peer.send(error("rate_limited", `At most ${MAX_MESSAGES_PER_SECOND} messages a second`));
  }
  if (raw.length > MAX_MESSAGE_BYTES) {
    return peer.send(error("message_too_large", `Messages are at most ${MAX_MESSAGE_BYTES} bytes`));
  }
  let message: { type?: unknown; token?: unknown; channel?: unknown };
  try {
    message = JSON.parse(raw);
    if (typeof message !== "object" || message === null) throw new Error("not an object");
  } catch {
    return peer.send(error("invalid_message", "Messages are JSON objects with a `type`"));
  }

  switch (message.type) {
    case "Ping":
      return peer.send({ type: "Pong" });
    case "Auth": {
      if (typeof message.token !== "string" || message.token.length > MAX_MESSAGE_BYTES) {
        return peer.send(error("invalid_message", "Auth needs a `token`"));
      }
      const principal = await host.authenticate(message.token);
      if (!principal) return peer.send(error("invalid_token", "The token is not valid"));
      peer.state = { ...newPeerState(principal), window: peer.state.window };
      return peer.send({
        type: "Authenticated",
        app: principal.appId,
        subject: principal.subjectId,
      });
    }
    case "Subscribe":
    case "Unsubscribe": {
      const { principal } = peer.state;
      if (!principal) {
        return peer.send(
          error("unauthenticated", "Authenticate with a ticket or an Auth message first"),
        );
      }
      const channel = message.channel;
      if (typeof channel !== "string" || !CHANNEL.test(channel)) {
        return peer.send(error("invalid_channel", "Channels are `gps` or `gps:<device_id>`"));
      }
      if (message.type === "Unsubscribe") {
        peer.state = { ...peer.state, channels: peer.state.channels.filter((c) => c !== channel) };
        return peer.send({ type: "Unsubscribed", channel });
      }
      if (!hasGpsRead(principal))
        return peer.send(error("forbidden", "Missing permission gps:read"));
      const deviceId = channel.startsWith("gps:") ? channel.slice(4) : undefined;
      if (deviceId && !(await host.deviceBelongsTo(deviceId, principal.appId))) {
        return peer.send(error("forbidden", "No such device in your app"));
      }
      if (!peer.state.channels.includes(channel)) {
        peer.state = { ...peer.state, channels: [...peer.state.channels, channel] };
      }
      return peer.send({ type: "Subscribed", channel });
    }
    default:
      return peer.send(error("invalid_message", "Unknown message type"));
  }
}

/** Sends an app's event to the peers of that app subscribed to its channel. */
export function deliver<P extends Principal>(
  peers: Iterable<Peer<P>>,
  appId: string,
  event: { type: "Position" | "DeviceStatus"; channel: string; data: unknown },
) {
  for (const peer of peers) {
    const { principal, channels } = peer.state;
    if (principal?.appId === appId && channels.includes(event.channel)) peer.send(event);
  }
}
