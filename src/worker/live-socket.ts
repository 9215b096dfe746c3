import { getServerByName } from "partyserver";
import {
  AUTH_TIMEOUT_MS,
  CLOSE_AUTH_TIMEOUT,
  CLOSE_UNAUTHORIZED,
  handleMessage,
  newPeerState,
  type Peer,
} from "../../party/room";
import type { Ports } from "../ports";
import { withDatabase } from "../ports/database";
import type { Services } from "../services/context";
import type { liveRoomHost, Principal } from "../services/socket-auth";
import {
  CLIENT_IP_HEADER,
  encodePrincipal,
  PRINCIPAL_HEADER,
  type WorkerEnv,
} from "./room-contract";

type RoomHost = ReturnType<typeof liveRoomHost>;

/**
 * `/v1/ws` on Workers. A socket joins its app's Durable Object room once Heimdall knows who it
 * is: with `?ticket=` the Worker checks the ticket and hands the upgrade to the room; without
 * one the Worker speaks the room protocol itself until an `Auth` message authenticates the
 * socket, then relays it to the room (a Durable Object is chosen when a socket opens, and the
 * app is not known before).
 */
export async function serveLiveSocket(
  request: Request,
  env: WorkerEnv,
  host: RoomHost,
  ports: Pick<Ports, "db" | "clientIp">,
  services: Pick<Services, "ipBans">,
): Promise<Response> {
  const url = new URL(request.url);
  const ip = ports.clientIp(request, env);
  if (ip && (await withDatabase(ports.db, (db) => services.ipBans.isBanned(db, ip)))) {
    return Response.json(
      {
        error: {
          code: "forbidden",
          message: "Connections from this address are banned",
          request_id: crypto.randomUUID(),
        },
      },
      { status: 403 },
    );
  }
  const ticket = url.searchParams.get("ticket");
  if (!ticket) return authenticateFirst(env, url.origin, host, ip);
  const principal = await host.authenticate(ticket, url.origin).catch((error: unknown) => {
    host.reportError("live socket ticket check failed", error);
    return undefined;
  });
  if (!principal) return refuse("invalid_token", "The ticket is not valid");
  return joinRoom(env, url.origin, principal, ip);
}

/** The upgrade, forwarded to the app's room with who the socket is (never the client's header). */
async function joinRoom(
  env: WorkerEnv,
  origin: string,
  principal: Principal,
  ip: string | undefined,
) {
  const room = await getServerByName(env.GPS_ROOM, principal.appId);
  return room.fetch(
    new Request(`${origin}/v1/ws`, {
      headers: {
        Upgrade: "websocket",
        [PRINCIPAL_HEADER]: encodePrincipal(principal),
        ...(ip ? { [CLIENT_IP_HEADER]: ip } : {}),
      },
    }),
  );
}

/** A socket told why, then closed: a browser cannot read an HTTP error on an upgrade. */
function refuse(code: "invalid_token", message: string) {
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  server.accept();
  server.send(JSON.stringify({ type: "Error", code, message }));
  server.close(CLOSE_UNAUTHORIZED, "invalid ticket");
  return new Response(null, { status: 101, webSocket: client });
}

function authenticateFirst(
  env: WorkerEnv,
  origin: string,
  host: RoomHost,
  ip: string | undefined,
): Response {
  const [client, socket] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  socket.accept();
  const peer: Peer<Principal> = {
    id: crypto.randomUUID(),
    origin,
    state: newPeerState(Date.now()),
    send(message) {
      // The room announces `Authenticated` itself when the socket joins it.
      if (message.type !== "Authenticated") socket.send(JSON.stringify(message));
    },
    close: (code, reason) => socket.close(code, reason),
  };
  let room: WebSocket | undefined;
  let queue = Promise.resolve();
  const timeout = setTimeout(() => {
    if (room) return;
    peer.send({
      type: "Error",
      code: "authentication_timeout",
      message: "No credential within 30 seconds",
    });
    peer.close(CLOSE_AUTH_TIMEOUT, "authentication timeout");
  }, AUTH_TIMEOUT_MS);

  socket.addEventListener("message", (event) => {
    queue = queue
      .then(async () => {
        if (room) return room.send(event.data);
        const text = typeof event.data === "string" ? event.data : "";
        await handleMessage(peer, text, host);
        const { principal } = peer.state;
        if (!principal) return;
        clearTimeout(timeout);
        const joined = await joinRoom(env, origin, principal, ip);
        const upstream = joined.webSocket;
        if (!upstream) throw new Error(`the room answered ${joined.status} to the upgrade`);
        upstream.accept();
        upstream.addEventListener("message", (message) => socket.send(message.data));
        upstream.addEventListener("close", (closed) =>
          closeQuietly(socket, closed.code, closed.reason),
        );
        socket.addEventListener("close", (closed) =>
          closeQuietly(upstream, closed.code, closed.reason),
        );
        room = upstream;
      })
      .catch((error: unknown) => {
        host.reportError("live socket relay failed", error);
        peer.send({
          type: "Error",
          code: "invalid_message",
          message: "The message could not be handled",
        });
      });
  });
  socket.addEventListener("close", () => clearTimeout(timeout));
  return new Response(null, { status: 101, webSocket: client });
}

/** Passes a close on; codes a peer may not send (1005, 1006) become a normal close. */
function closeQuietly(socket: WebSocket, code: number, reason: string) {
  try {
    socket.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  } catch {
    // Already closed.
  }
}
