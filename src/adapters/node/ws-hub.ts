import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  authenticated,
  CLOSE_UNAUTHORIZED,
  deliver,
  handleMessage,
  newPeerState,
  type Peer,
  type Principal,
  type RoomHost,
  sweep,
} from "../../../party/room";
import { eventStream } from "../../lib/event-stream";
import type { Logger } from "../../ports/logger";
import type { LiveEvent, Realtime } from "../../ports/realtime";

export interface NodeHubOptions<P extends Principal> {
  host: RoomHost<P>;
  logger: Logger;
  /** How often dead sockets are found (ping frames) and the room is swept. */
  heartbeatMs?: number;
  /** How often revoked credentials and unauthenticated sockets are looked for. */
  sweepMs?: number;
  /** A subscriber this far behind is skipped rather than slowing anyone down. */
  maxBufferedBytes?: number;
}

/** Another process's events, or ours for the others (the Redis fan-out). */
export interface AppEvents {
  appId: string;
  events: readonly LiveEvent[];
}

/**
 * The live room on Node: the protocol of `party/room.ts` over `ws`, attached to the HTTP server
 * at `/v1/ws`. It is the Node entry's realtime port: `publish` fans out in-process, skipping
 * subscribers whose socket buffer is full.
 */
export function createNodeHub<P extends Principal>(options: NodeHubOptions<P>) {
  const { host, logger } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const peers = new Map<WebSocket, Peer<P> & { alive: boolean }>();
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;

  function onConnection(socket: WebSocket, request: IncomingMessage) {
    const origin = `http://${request.headers.host ?? "localhost"}`;
    const peer = {
      id: crypto.randomUUID(),
      origin,
      state: newPeerState<P>(host.now()),
      send(message: unknown, serialized?: string) {
        if (socket.readyState !== socket.OPEN || socket.bufferedAmount > maxBuffered) return;
        socket.send(serialized ?? JSON.stringify(message));
      },
      close: (code: number, reason: string) => socket.close(code, reason),
      alive: true,
    };
    peers.set(socket, peer);
    socket.on("pong", () => {
      peer.alive = true;
    });
    socket.on("close", () => peers.delete(socket));
    socket.on("error", () => peers.delete(socket));
    // One message at a time per socket, after the ticket: `Auth` or `Subscribe` sent as soon as
    // the socket opens must find it authenticated, though authenticating is asynchronous.
    const ticket = new URL(request.url ?? "/", origin).searchParams.get("ticket");
    let queue = ticket ? authenticateTicket(peer, ticket) : Promise.resolve();
    socket.on("message", (data, isBinary) => {
      const text = isBinary ? "" : data.toString();
      queue = queue.then(() => handleMessage(peer, text, host));
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
        peers.delete(socket);
        continue;
      }
      peer.alive = false;
      socket.ping();
    }
  }, options.heartbeatMs ?? 30_000);
  heartbeat.unref();

  const sweeper = setInterval(() => {
    void sweep(peers.values(), host);
  }, options.sweepMs ?? 15_000);
  sweeper.unref();

  let fanout: ((events: AppEvents) => Promise<void>) | undefined;
  const listeners = new Set<(events: AppEvents) => void>();
  const deliverLocally = (appEvents: AppEvents) => {
    deliver(peers.values(), appEvents.appId, appEvents.events);
    for (const listener of listeners) listener(appEvents);
  };

  const realtime: Realtime = {
    async publish(appId, events) {
      deliverLocally({ appId, events });
      // Other processes get it through the fan-out; a failure there must not fail the ingest.
      await fanout?.({ appId, events }).catch((error: unknown) =>
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
    fanOutWith(publish: (events: AppEvents) => Promise<void>) {
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
        wss.handleUpgrade(request, socket, head, (ws) => {
          onConnection(ws, request);
        });
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
