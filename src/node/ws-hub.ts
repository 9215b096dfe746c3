import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  type AddressBans,
  authenticated,
  CLOSE_UNAUTHORIZED,
  handleMessage,
  newPeerState,
  type Peer,
  type Principal,
  type RoomHost,
  Subscribers,
  sweep,
} from "../../party/room";
import { eventStream } from "../lib/event-stream";
import type { Logger } from "../ports/logger";
import type { LiveEvent, Realtime } from "../ports/realtime";

export interface NodeHubOptions<P extends Principal> {
  host: RoomHost<P>;
  logger: Logger;
  /** How often dead sockets are found (ping frames) and the room is swept. */
  heartbeatMs?: number;
  /** How often revoked credentials and unauthenticated sockets are looked for. */
  sweepMs?: number;
  /** A subscriber this far behind is skipped rather than slowing anyone down. */
  maxBufferedBytes?: number;
  /**
   * Who may open a socket: an upgrade from a banned address is refused (403), and so is one
   * beyond `maxSocketsPerIp()` open sockets of its address (429); the sweep closes the sockets of
   * an address banned later.
   */
  admission?: AddressBans & {
    clientIp(request: IncomingMessage): string | undefined;
    maxSocketsPerIp(): number;
  };
}

/** Another process's events, or ours for the others (the Redis fan-out). */
export interface AppEvents {
  appId: string;
  events: readonly LiveEvent[];
  /** Each event's JSON, when it has been written already. */
  json?: readonly string[];
}

/**
 * The live room on Node: the protocol of `party/room.ts` over `ws`, attached to the HTTP server
 * at `/v1/ws`. It is the Node entry's realtime port: `publish` fans out in-process to the sockets
 * subscribed to each event's app and channel, skipping those whose socket buffer is full.
 */
export function createNodeHub<P extends Principal>(options: NodeHubOptions<P>) {
  const { host, logger } = options;
  // No permessage-deflate: every subscriber of an event gets the same frame, which is built once
  // (`broadcastFrame`) and written to each connection as it is.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    perMessageDeflate: false,
  });
  const peers = new Map<WebSocket, Peer<P> & { alive: boolean }>();
  const subscribers = new Subscribers<P>();
  const forget = (socket: WebSocket) => {
    const peer = peers.get(socket);
    if (!peer) return;
    peers.delete(socket);
    subscribers.remove(peer.id);
  };
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;

  const { admission } = options;
  /** Open sockets (and upgrades under way) per client address. */
  const socketsPerIp = new Map<string, number>();

  /** The frame of the event being delivered, built for its first subscriber and reused. */
  let broadcast: { text: string; frame: Buffer } | undefined;
  const broadcastFrame = (text: string) => {
    if (broadcast?.text !== text) broadcast = { text, frame: textFrame(text) };
    return broadcast.frame;
  };

  /**
   * `connection` is the socket under `socket`: an event's frame is written to it directly, as
   * `ws` would write it, in order with what `ws` writes (it writes through `connection` too).
   */
  function onConnection(
    socket: WebSocket,
    connection: Duplex,
    request: IncomingMessage,
    ip: string | undefined,
  ) {
    const origin = `http://${request.headers.host ?? "localhost"}`;
    const peer = {
      id: crypto.randomUUID(),
      origin,
      ip,
      state: newPeerState<P>(host.now()),
      send(message: unknown, serialized?: string) {
        if (socket.readyState !== socket.OPEN || socket.bufferedAmount > maxBuffered) return;
        if (serialized === undefined) socket.send(JSON.stringify(message));
        else connection.write(broadcastFrame(serialized));
      },
      close: (code: number, reason: string) => socket.close(code, reason),
      alive: true,
    };
    peers.set(socket, peer);
    socket.on("pong", () => {
      peer.alive = true;
    });
    socket.on("close", () => forget(socket));
    socket.on("error", () => forget(socket));
    // One message at a time per socket, after the ticket: `Auth` or `Subscribe` sent as soon as
    // the socket opens must find it authenticated, though authenticating is asynchronous.
    const ticket = new URL(request.url ?? "/", origin).searchParams.get("ticket");
    let queue = ticket ? authenticateTicket(peer, ticket) : Promise.resolve();
    socket.on("message", (data, isBinary) => {
      const text = isBinary ? "" : data.toString();
      queue = queue
        .then(() => handleMessage(peer, text, host))
        .then(() => {
          if (peers.has(socket)) subscribers.update(peer);
        });
    });
  }

  async function authenticateTicket(peer: Peer<P>, ticket: string) {
    const principal = await host.authenticate(ticket, peer.origin).catch((error: unknown) => {
      host.reportError("live socket ticket check failed", error);
      return undefined;
    });
    if (!principal) {
      peer.send({ type: "Error", code: "invalid_token", message: "The ticket is not valid" });
      peer.close(CLOSE_UNAUTHORIZED, "invalid ticket");
      return;
    }
    peer.state = newPeerState(peer.state.openedAt, principal);
    peer.send(authenticated(principal));
  }

  const heartbeat = setInterval(() => {
    for (const [socket, peer] of peers) {
      if (!peer.alive) {
        socket.terminate();
        forget(socket);
        continue;
      }
      peer.alive = false;
      socket.ping();
    }
  }, options.heartbeatMs ?? 30_000);
  heartbeat.unref();

  const sweeper = setInterval(() => {
    void sweep(peers.values(), host, admission);
  }, options.sweepMs ?? 15_000);
  sweeper.unref();

  /**
   * The client's address if it may open a socket (its slot is held until the connection ends),
   * or false once the upgrade has been refused.
   */
  async function admit(request: IncomingMessage, socket: Duplex) {
    if (!admission) return undefined;
    const ip = admission.clientIp(request);
    if (ip === undefined) return undefined;
    if (await admission.isBanned(ip)) {
      refuse(socket, 403, "forbidden", "Connections from this address are banned");
      return false;
    }
    const open = socketsPerIp.get(ip) ?? 0;
    const max = admission.maxSocketsPerIp();
    if (open >= max) {
      refuse(socket, 429, "rate_limited", `At most ${max} live sockets per address`);
      return false;
    }
    socketsPerIp.set(ip, open + 1);
    socket.once("close", () => {
      const left = (socketsPerIp.get(ip) ?? 1) - 1;
      if (left > 0) socketsPerIp.set(ip, left);
      else socketsPerIp.delete(ip);
    });
    return ip;
  }

  let fanout: ((events: Required<AppEvents>) => Promise<void>) | undefined;
  const listeners = new Set<(events: AppEvents) => void>();
  const deliverLocally = (appEvents: AppEvents) => {
    subscribers.deliver(appEvents.appId, appEvents.events, appEvents.json);
    broadcast = undefined;
    for (const listener of listeners) listener(appEvents);
  };

  const realtime: Realtime = {
    async publish(appId, events) {
      if (!fanout) return deliverLocally({ appId, events });
      // Each event is serialised once, for the other processes and for our own sockets.
      const published = { appId, events, json: events.map((event) => JSON.stringify(event)) };
      deliverLocally(published);
      // A failure of the fan-out must not fail the ingest.
      await fanout(published).catch((error: unknown) =>
        logger.warn("live fan-out publish failed", { error }),
      );
    },
    subscribe: (appId, channel, signal) =>
      eventStream(signal, (push) => {
        const listener = (published: AppEvents) => {
          if (published.appId !== appId) return;
          for (const event of published.events) if (event.channel === channel) push(event);
        };
        listeners.add(listener);
        return () => listeners.delete(listener);
      }),
  };

  return {
    ...realtime,
    /** Events of other processes (Redis fan-out) are delivered here. */
    deliverLocally,
    /** Sends what this process publishes to the other processes too. */
    fanOutWith(publish: (events: Required<AppEvents>) => Promise<void>) {
      fanout = publish;
    },
    /** Serves `path` upgrades of `server`; other upgrades are refused. */
    attach(server: Server, path = "/v1/ws") {
      server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
        const { pathname } = new URL(request.url ?? "/", "http://localhost");
        if (pathname !== path) {
          socket.destroy();
          return;
        }
        void admit(request, socket).then(
          (ip) => {
            if (ip === false) return;
            wss.handleUpgrade(request, socket, head, (ws) => {
              onConnection(ws, socket, request, ip);
            });
          },
          (error: unknown) => {
            host.reportError("live socket admission failed", error);
            refuse(socket, 503, "service_unavailable", "The ban list could not be checked");
          },
        );
      });
    },
    get connections() {
      return peers.size;
    },
    async close() {
      clearInterval(heartbeat);
      clearInterval(sweeper);
      for (const socket of peers.keys()) socket.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

export type NodeHub = ReturnType<typeof createNodeHub>;

const reasons: Record<number, string> = {
  403: "Forbidden",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

/** An upgrade refused in HTTP, in the error shape, before any WebSocket exists. */
function refuse(socket: Duplex, status: 403 | 429 | 503, code: string, message: string) {
  const body = JSON.stringify({ error: { code, message, request_id: crypto.randomUUID() } });
  socket.end(
    `HTTP/1.1 ${status} ${reasons[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * A server's text frame holding `text` whole (RFC 6455 §5.2: FIN, opcode 1, unmasked; the
 * length in 7 bits, or 16 or 64 after the 126 or 127 marker).
 */
function textFrame(text: string) {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(text, header, "utf8");
  return frame;
}
