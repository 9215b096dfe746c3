import ReconnectingWebSocket from "partysocket/ws";
import type { Position, Session } from "./api";

export interface LiveHandlers {
  onPosition(position: Position): void;
  onStatus(status: { device_id: string; status: "online" | "offline"; at: string }): void;
  onConnection(state: "connecting" | "live" | "offline"): void;
}

/**
 * The app's live room (`/v1/ws`): a fresh single-use ticket for every (re)connection, so the
 * access token never appears in a URL; partysocket reconnects with backoff.
 */
export function connectLive(session: Session, handlers: LiveHandlers) {
  handlers.onConnection("connecting");
  const socket = new ReconnectingWebSocket(async () => {
    const ticket = await session.request<{ data: { url: string } }>("POST", "/v1/ws/ticket");
    return ticket.data.url;
  });
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify({ type: "Subscribe", channel: "gps" }));
  });
  socket.addEventListener("close", () => handlers.onConnection("offline"));
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data));
    if (message.type === "Subscribed") handlers.onConnection("live");
    if (message.type === "Position") handlers.onPosition(message.data);
    if (message.type === "DeviceStatus") handlers.onStatus(message.data);
  });
  return { close: () => socket.close() };
}
