import { type Connection, Server, type WSMessage } from "partyserver";
import { withDatabase } from "../src/ports/database";
import type { LiveEvent } from "../src/ports/realtime";
import { createServices } from "../src/services/context";
import { liveRoomHost, type Principal } from "../src/services/socket-auth";
import { createWorkerPorts } from "../src/worker/ports";
import {
  CLIENT_IP_HEADER,
  decodePrincipal,
  PRINCIPAL_HEADER,
  type WorkerEnv,
} from "../src/worker/room-contract";
import {
  type AddressBans,
  authenticated,
  CLOSE_TOO_MANY,
  handleMessage,
  newPeerState,
  type Peer,
  type PeerState,
  type RoomHost,
  type Subscribers,
  subscribersOf,
  sweep,
} from "./room";

type State = PeerState<Principal> & { ip?: string };

/**
 * An app's live GPS room on a Durable Object (named by the app's id), a thin host over
 * `room.ts`. Sockets arrive authenticated by the Worker (`src/worker/live-socket.ts`);
 * their state lives in `connection.setState`, which survives hibernation, and `{type:"Ping"}`
 * is answered by the runtime without waking the room. Who subscribes to what is indexed in memory
 * while the room is awake, and read back from the sockets' state when it wakes.
 */
export class GpsRoom extends Server<WorkerEnv> {
  static override options = { hibernate: true };
  #room:
    | Promise<{
        host: RoomHost<Principal>;
        bans: AddressBans;
        sweepMs: number;
        maxSocketsPerIp: number;
      }>
    | undefined;
  /** Each socket's messages are handled in order; authenticating is asynchronous. */
  readonly #queues = new Map<string, Promise<void>>();
  #index: Subscribers<Principal> | undefined;

  #subscribers() {
    this.#index ??= subscribersOf(this.#peers());
    return this.#index;
  }

  /** Built on first need, from the same bindings and ports as the Worker's. */
  #ports() {
    this.#room ??= createWorkerPorts(this.env).then((ports) => {
      const services = createServices(ports);
      return {
        host: liveRoomHost(services, ports.db),
        bans: {
          isBanned: (ip) => withDatabase(ports.db, (db) => services.ipBans.isBanned(db, ip)),
        },
        sweepMs: ports.config.LIVE_SWEEP_SECONDS * 1000,
        maxSocketsPerIp: ports.config.LIVE_MAX_SOCKETS_PER_IP,
      };
    });
    return this.#room;
  }

  /** While the room has sockets, it sweeps them every `LIVE_SWEEP_SECONDS`. */
  async #scheduleSweep() {
    const { sweepMs } = await this.#ports();
    await this.ctx.storage.setAlarm(Date.now() + sweepMs);
  }

  override onStart() {
    this.ctx.setWebSocketAutoResponse(
      new WebSocketRequestResponsePair(
        JSON.stringify({ type: "Ping" }),
        JSON.stringify({ type: "Pong" }),
      ),
    );
  }

  override async onConnect(connection: Connection<State>, { request }: { request: Request }) {
    const header = request.headers.get(PRINCIPAL_HEADER);
    const principal = header ? decodePrincipal(header) : undefined;
    const ip = request.headers.get(CLIENT_IP_HEADER) ?? undefined;
    // The app's room holds an address's authenticated sockets: at most LIVE_MAX_SOCKETS_PER_IP.
    const { maxSocketsPerIp } = await this.#ports();
    let open = 0;
    for (const other of this.getConnections<State>()) {
      if (other.id !== connection.id && ip && (other.state as State | null)?.ip === ip) open++;
    }
    if (open >= maxSocketsPerIp) {
      connection.send(
        JSON.stringify({
          type: "Error",
          code: "rate_limited",
          message: `At most ${maxSocketsPerIp} live sockets per address`,
        }),
      );
      connection.close(CLOSE_TOO_MANY, "too many sockets");
      return;
    }
    connection.setState({ ...newPeerState(Date.now(), principal), ...(ip ? { ip } : {}) });
    if (principal) connection.send(JSON.stringify(authenticated(principal)));
    if ((await this.ctx.storage.getAlarm()) === null) await this.#scheduleSweep();
  }

  override onMessage(connection: Connection<State>, message: WSMessage) {
    const text = typeof message === "string" ? message : "";
    const previous = this.#queues.get(connection.id) ?? Promise.resolve();
    const next = previous.then(async () => {
      const peer = this.#peerOf(connection);
      await handleMessage(peer, text, (await this.#ports()).host);
      connection.setState({ ...peer.state, ...(peer.ip ? { ip: peer.ip } : {}) });
      if (connection.readyState === WebSocket.OPEN) this.#subscribers().update(peer);
    });
    this.#queues.set(connection.id, next);
    void next.finally(() => {
      if (this.#queues.get(connection.id) === next) this.#queues.delete(connection.id);
    });
  }

  override onClose(connection: Connection<State>) {
    this.#index?.remove(connection.id);
  }

  override onError(connection: Connection<State>) {
    this.#index?.remove(connection.id);
  }

  /** RPC from the Worker's realtime port: the app's events, to the sockets subscribed. */
  async publish(events: readonly LiveEvent[]) {
    this.#subscribers().deliver(this.name, events);
  }

  override async onAlarm() {
    const peers = [...this.#peers()];
    if (peers.length === 0) return;
    const { host, bans } = await this.#ports();
    await sweep(peers, host, bans);
    await this.#scheduleSweep();
  }

  *#peers(): Iterable<Peer<Principal>> {
    for (const connection of this.getConnections<State>()) yield this.#peerOf(connection);
  }

  #peerOf(connection: Connection<State>): Peer<Principal> {
    const state = (connection.state as State | null) ?? newPeerState(Date.now());
    return {
      id: connection.id,
      origin: new URL(connection.uri ?? "http://localhost").origin,
      ip: (state as State).ip,
      state,
      send: (message, serialized) => {
        if (connection.readyState !== WebSocket.OPEN) return;
        connection.send(serialized ?? JSON.stringify(message));
      },
      close: (code, reason) => {
        this.#index?.remove(connection.id);
        connection.close(code, reason);
      },
    };
  }
}
