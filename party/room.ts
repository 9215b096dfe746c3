/**
 * The live room's protocol, written once for both hosts (the Durable Object in
 * `party/gps-room.ts` and the Node hub). Runtime-free: it sees text in and answers text out.
 */
export type ServerMessage =
  | { type: "Pong" }
  | { type: "Error"; code: "invalid_message" | "unauthenticated"; message: string };

export function answer(raw: string): ServerMessage {
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    return { type: "Error", code: "invalid_message", message: "Messages are JSON objects" };
  }
  if (typeof message === "object" && message !== null && "type" in message) {
    if (message.type === "Ping") return { type: "Pong" };
  }
  // Nothing is streamed to a socket that has not authenticated (DESIGN.md, WebSocket).
  return {
    type: "Error",
    code: "unauthenticated",
    message: "Authenticate with a ticket or an Auth message first",
  };
}
