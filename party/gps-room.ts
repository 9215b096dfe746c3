import { type Connection, Server, type WSMessage } from "partyserver";
import { handleMessage, newPeerState, type PeerState, type RoomHost } from "./room";

/**
 * One live GPS room per app on a Durable Object; a thin host over `room.ts`. Per-socket state
 * lives in `connection.setState`, which survives hibernation.
 *
 * Authentication inside the Durable Object arrives with issue #9's Worker routing; until then
 * the room answers Ping and refuses to stream to anyone.
 */
const host: RoomHost<never> = {
  authenticate: async () => undefined,
  deviceBelongsTo: async () => false,
  now: () => Date.now(),
};

export class GpsRoom extends Server {
  static override options = { hibernate: true };

  override async onMessage(connection: Connection<PeerState<never>>, message: WSMessage) {
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    const peer = {
      id: connection.id,
      state: (connection.state as PeerState<never> | null) ?? newPeerState<never>(),
      send: (reply: unknown) => connection.send(JSON.stringify(reply)),
    };
    await handleMessage(peer, text, host);
    connection.setState(peer.state);
  }
}
