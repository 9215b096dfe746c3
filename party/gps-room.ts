import { type Connection, Server, type WSMessage } from "partyserver";
import { answer } from "./room";

/** One live GPS room per (app, channel) on a Durable Object; a thin host over `room.ts`. */
export class GpsRoom extends Server {
  static override options = { hibernate: true };

  override onMessage(connection: Connection, message: WSMessage) {
    const text = typeof message === "string" ? message : new TextDecoder().decode(message);
    connection.send(JSON.stringify(answer(text)));
  }
}
