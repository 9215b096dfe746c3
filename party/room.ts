/**
 * The live room's protocol (its messages), written once for both hosts: the Durable
 * Object in `party/gps-room.ts` and the Node hub in `src/node/ws-hub.ts`. Runtime-free:
 * it sees text in, sends messages out, and asks its host to authenticate and authorize.
 *
 * Client → server: `{type:"Ping"}`, `{type:"Auth", token}`, `{type:"Subscribe", channel}`,
 * `{type:"Unsubscribe", channel}`; channels `gps` (every device of the app) and
 * `gps:<device_id>`. Server → client: `Pong`, `Authenticated`, `Subscribed`, `Unsubscribed`,
 * `Position`, `DeviceStatus`, `Error {code, message}`. Nothing is streamed to a socket that has
 * not authenticated.
 */
import type { LiveEvent } from "../src/ports/realtime";
import { hasPermission } from "../src/services/permissions";

export interface Principal {
  appId: string;
  subjectId: string;
  permissions: string[];
}

export interface PeerState<P extends Principal = Principal> {
  readonly principal?: P;
  /** When the socket opened (ms), for the authentication timeout. */
  readonly openedAt: number;
  readonly channels: readonly string[];
  /** Messages received in the current one-second window, for the per-socket rate limit. */
  readonly window: { readonly startedAt: number; readonly count: number };
}

export interface Peer<P extends Principal = Principal> {
  readonly id: string;
  /** The origin the socket connected to (`https://host`), for the tokens' issuer check. */
  readonly origin: string;
  /** The client's address, where the host knows it: the sweep closes it once it is banned. */
  readonly ip?: string | undefined;
  state: PeerState<P>;
  /** `serialized` is `message` as JSON when the room has it already (one event, many peers). */
  send(message: ServerMessage, serialized?: string): void;
  close(code: number, reason: string): void;
}

export type ServerMessage =
  | { type: "Pong" }
  | { type: "Authenticated"; app: string; subject: string }
  | { type: "Subscribed" | "Unsubscribed"; channel: string }
  | LiveEvent
  | { type: "Error"; code: ErrorCode; message: string };

type ErrorCode =
  | "invalid_message"
  | "message_too_large"
  | "rate_limited"
  | "unauthenticated"
  | "invalid_token"
  | "forbidden"
  | "invalid_channel"
  | "authentication_timeout";

export interface RoomHost<P extends Principal> {
  /** A ticket, access token or API key → its principal, or undefined. */
  authenticate(credential: string, origin: string): Promise<P | undefined>;
  /** Whether a device belongs to the app (for `gps:<device_id>`). */
  deviceBelongsTo(deviceId: string, appId: string): Promise<boolean>;
  /**
   * Whether the credentials the sockets authenticated with have been revoked since, in the order
   * of `principals`: one look-up for the whole room.
   */
  revokedAmong(principals: readonly P[]): Promise<readonly boolean[]>;
  now(): number;
  /** Where a failure of the host's own (database, revocation store) is reported. */
  reportError(message: string, error: unknown): void;
}

export const MAX_MESSAGE_BYTES = 4096;
export const MAX_MESSAGES_PER_SECOND = 20;
/** A socket that has not authenticated this long after opening is closed. */
export const AUTH_TIMEOUT_MS = 30_000;
/**
 * Close codes: the credential is invalid or was revoked; the address is banned; it has too many
 * sockets open; no credential came in time.
 */
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_BANNED = 4003;
export const CLOSE_TOO_MANY = 4029;
export const CLOSE_AUTH_TIMEOUT = 4008;

/** Which addresses are banned (the ban list of the host's runtime). */
export interface AddressBans {
  isBanned(ip: string): Promise<boolean>;
}
const CHANNEL = /^gps(?::dev_[0-9A-Z]{26})?$/;

export function newPeerState<P extends Principal>(openedAt: number, principal?: P): PeerState<P> {
  return {
    ...(principal ? { principal } : {}),
    openedAt,
    channels: [],
    window: { startedAt: 0, count: 0 },
  };
}

/** What a socket is told once it has authenticated (by ticket or by an `Auth` message). */
export const authenticated = (principal: Principal): ServerMessage => ({
  type: "Authenticated",
  app: principal.appId,
  subject: principal.subjectId,
});

const error = (code: ErrorCode, message: string): ServerMessage => ({
  type: "Error",
  code,
  message,
});

/** Handles one message from a peer; every problem is answered with an `Error`, never a crash. */
export async function handleMessage<P extends Principal>(
  peer: Peer<P>,
  raw: string,
  host: RoomHost<P>,
): Promise<void> {
  try {
    await handle(peer, raw, host);
  } catch (failure) {
    host.reportError("live room message failed", failure);
    peer.send(error("invalid_message", "The message could not be handled"));
  }
}

async function handle<P extends Principal>(peer: Peer<P>, raw: string, host: RoomHost<P>) {
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
      const principal = await host.authenticate(message.token, peer.origin);
      if (!principal) return peer.send(error("invalid_token", "The token is not valid"));
      peer.state = { ...newPeerState(peer.state.openedAt, principal), window: peer.state.window };
      return peer.send(authenticated(principal));
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
      if (!hasPermission(principal.permissions, "gps:read"))
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

const subscription = (appId: string, channel: string) => `${appId}\u0000${channel}`;

/**
 * Who listens to which channel of which app (on Node one hub holds every app's sockets), kept by
 * the host from its peers' state: after each message a peer sent, and when it leaves. Delivering
 * an event touches only its subscribers and serialises it once, only when it has any.
 */
export class Subscribers<P extends Principal = Principal> {
  /** (app, channel) → the peers subscribed to it, by id. */
  readonly #peers = new Map<string, Map<string, Peer<P>>>();
  /** Peer id → the (app, channel) pairs it is in. */
  readonly #subscriptions = new Map<string, ReadonlySet<string>>();

  /** Brings the index in line with `peer.state`: its app and channels. */
  update(peer: Peer<P>) {
    const appId = peer.state.principal?.appId;
    const current = new Set(
      appId === undefined ? [] : peer.state.channels.map((channel) => subscription(appId, channel)),
    );
    for (const key of this.#subscriptions.get(peer.id) ?? []) {
      if (!current.has(key)) this.#unlink(key, peer.id);
    }
    for (const key of current) {
      let peers = this.#peers.get(key);
      if (!peers) {
        peers = new Map();
        this.#peers.set(key, peers);
      }
      peers.set(peer.id, peer);
    }
    if (current.size > 0) this.#subscriptions.set(peer.id, current);
    else this.#subscriptions.delete(peer.id);
  }

  /** Forgets a peer that left. */
  remove(peerId: string) {
    for (const key of this.#subscriptions.get(peerId) ?? []) this.#unlink(key, peerId);
    this.#subscriptions.delete(peerId);
  }

  /**
   * Sends each of an app's events to the peers subscribed to its channel, the same text to each:
   * `json[i]` when the caller has serialised the events already, else the event serialised here.
   */
  deliver(appId: string, events: readonly LiveEvent[], json?: readonly string[]) {
    events.forEach((event, index) => {
      const peers = this.#peers.get(subscription(appId, event.channel));
      if (!peers) return;
      const text = json?.[index] ?? JSON.stringify(event);
      for (const peer of peers.values()) peer.send(event, text);
    });
  }

  #unlink(key: string, peerId: string) {
    const peers = this.#peers.get(key);
    peers?.delete(peerId);
    if (peers?.size === 0) this.#peers.delete(key);
  }
}

/** The index of peers whose state the host has (the Durable Object's sockets as it wakes). */
export function subscribersOf<P extends Principal>(peers: Iterable<Peer<P>>) {
  const subscribers = new Subscribers<P>();
  for (const peer of peers) subscribers.update(peer);
  return subscribers;
}

/**
 * The room's periodic check, run by each host's timer: closes sockets whose address has been
 * banned since they opened, that did not authenticate in time, and whose credential was revoked
 * (the stream stops). The credentials of all its sockets are checked in one look-up. A failed
 * revocation or ban check keeps the sockets and is reported.
 */
export async function sweep<P extends Principal>(
  peers: Iterable<Peer<P>>,
  host: RoomHost<P>,
  bans?: AddressBans,
) {
  const now = host.now();
  const banned = new Map<string, Promise<boolean>>();
  const isBanned = (ip: string) => {
    let check = banned.get(ip);
    if (!check) {
      check = bans?.isBanned(ip) ?? Promise.resolve(false);
      banned.set(ip, check);
    }
    return check;
  };
  const remaining: Peer<P>[] = [];
  await Promise.all(
    [...peers].map(async (peer) => {
      const closed =
        peer.ip !== undefined &&
        (await isBanned(peer.ip).catch((failure: unknown) => {
          host.reportError("live room ban check failed", failure);
          return false;
        }));
      if (!closed) return remaining.push(peer);
      peer.send(error("forbidden", "Connections from this address are banned"));
      peer.close(CLOSE_BANNED, "banned");
    }),
  );
  const signedIn: Array<{ peer: Peer<P>; principal: P }> = [];
  for (const peer of remaining) {
    const { principal } = peer.state;
    if (principal) {
      signedIn.push({ peer, principal });
      continue;
    }
    if (now - peer.state.openedAt < AUTH_TIMEOUT_MS) continue;
    peer.send(error("authentication_timeout", "No credential within 30 seconds"));
    peer.close(CLOSE_AUTH_TIMEOUT, "authentication timeout");
  }
  if (signedIn.length === 0) return;
  const revoked = await host
    .revokedAmong(signedIn.map(({ principal }) => principal))
    .catch((failure: unknown) => {
      host.reportError("live room revocation check failed", failure);
      return [];
    });
  signedIn.forEach(({ peer }, index) => {
    if (!revoked[index]) return;
    peer.send(error("invalid_token", "The credential was revoked"));
    peer.close(CLOSE_UNAUTHORIZED, "revoked");
  });
}
