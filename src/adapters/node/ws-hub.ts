import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import {
  deliver,
  handleMessage,
  newPeerState,
  type Peer,
  type Principal,
  type RoomHost,
} from "../../../party/room";
import type { Logger } from "../../ports/logger";
import type { Realtime } from "../../ports/realtime";

export interface NodeHubOptions<P extends Principal> {
  /** Authenticates a ticket, token or API key; `origin` is the socket's, for issuer checks. */
  authenticate(credential: string, origin: string): Promise<P | undefined>;
  deviceBelongsTo(deviceId: string, appId: string): Promise<boolean>;
  isRevoked(principal: P): Promise<boolean>;
  logger: Logger;
  now(): number;
  heartbeatMs?: number;
  revocationCheckMs?: number;
  /** A subscriber this far behind is skipped rather than slowing anyone down. */
  maxBufferedBytes?: number;
}

/**
 * The live room on Node: the protocol of `party/room.ts` over `ws`, attached to the HTTP server
 * at `/v1/ws`. It is the Node entry's realtime port: `publish` fans out in-process, skipping
 * subscribers whose socket buffer is full.
 */
export function createNodeHub<P extends Principal>(options: NodeHubOptions<P>) {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const peers = new Map<WebSocket, Peer<P> & { alive: boolean; origin: string }>();
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;

  const send = (socket: WebSocket) => (message: unknown) => {
    if (socket.readyState !== socket.OPEN || socket.bufferedAmount > maxBuffered) return;
    socket.send(JSON.stringify(message));
  };

  async function onConnection(socket: WebSocket, request: IncomingMessage) {
    const url = new URL(request.url ?? "/", `http://${request.headers.host ?? "localhost"}`);
    const origin = `http://${request.headers.host ?? "localhost"}`;
    const peer = {
      id: crypto.randomUUID(),
      state: newPeerState<P>(),
      send: send(socket),
      alive: true,
      origin,
    };
    peers.set(socket, peer);
    socket.on("pong", () => {
      peer.alive = true;
    });
    socket.on("close", () => peers.delete(socket));
    socket.on("error", () => peers.delete(socket));
    const host: RoomHost<P> = {
      authenticate: (credential) => options.authenticate(credential, origin),
      deviceBelongsTo: options.deviceBelongsTo,
      now: options.now,
    };
    // One message at a time per socket: `Auth` then `Subscribe` sent back to back must be
    // handled in that order, though authenticating is asynchronous.
    let queue = Promise.resolve();
    socket.on("message", (data, isBinary) => {
      const text = isBinary ? "" : data.toString();
      queue = queue.then(() =>
        handleMessage(peer, text, host).catch((error: unknown) => {
          options.logger.error("live room message failed", { error });
          peer.send({
            type: "Error",
            code: "invalid_message",
            message: "The message could not be handled",
          });
        }),
      );
    });
    const ticket = url.searchParams.get("ticket");
    if (ticket) {
      const principal = await options.authenticate(ticket, origin).catch(() => undefined);
      if (!principal) {
        peer.send({ type: "Error", code: "invalid_token", message: "The ticket is not valid" });
        socket.close(4001, "invalid ticket");
        return;
      }
      peer.state = newPeerState(principal);
      peer.send({ type: "Authenticated", app: principal.appId, subject: principal.subjectId });
    }
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

  // Tokens revoked mid-stream stop the stream.
  const revocationCheck = setInterval(() => {
    for (const [socket, peer] of peers) {
      const { principal } = peer.state;
      if (!principal) continue;
      options.isRevoked(principal).then(
        (revoked) => {
          if (!revoked) return;
          peer.send({
            type: "Error",
            code: "invalid_token",
            message: "The credential was revoked",
          });
          socket.close(4001, "revoked");
        },
        (error: unknown) => options.logger.warn("live room revocation check failed", { error }),
      );
    }
  }, options.revocationCheckMs ?? 15_000);
  revocationCheck.unref();

  let fanout: ((event: { appId: string; event: unknown }) => Promise<void>) | undefined;
  const deliverLocally = (appId: string, event: unknown) =>
    deliver(peers.values(), appId, event as Parameters<typeof deliver>[2]);

  const realtime: Realtime = {
    async publish(room, event) {
      deliverLocally(room.appId, event);
      // Other processes get it through the fan-out; a failure there must not fail the ingest.
      await fanout?.({ appId: room.appId, event }).catch((error: unknown) =>
        options.logger.warn("live fan-out publish failed", { error }),
      );
    },
  };

  return {
    ...realtime,
    /** Events of other processes (Redis fan-out) are delivered here. */
    deliverLocally,
    /** Sends what this process publishes to the other processes too. */
    fanOutWith(publish: (event: { appId: string; event: unknown }) => Promise<void>) {
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
          void onConnection(ws, request);
        });
      });
    },
    get connections() {
      return peers.size;
    },
    async close() {
      clearInterval(heartbeat);
      clearInterval(revocationCheck);
      for (const socket of peers.keys()) socket.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

export type NodeHub = ReturnType<typeof createNodeHub>;
