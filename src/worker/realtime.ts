import { getServerByName } from "partyserver";
import { eventStream } from "../lib/event-stream";
import type { LiveEvent, Realtime } from "../ports/realtime";
import { encodePrincipal, type LiveRoomServer, PRINCIPAL_HEADER } from "./room-contract";

/**
 * The app's Durable Object room (one per app, named by its id): events go in by RPC; a
 * server-side subscriber joins the room as a socket of its own, like any other.
 */
export function createDurableObjectRealtime(
  rooms: DurableObjectNamespace<LiveRoomServer>,
): Realtime {
  return {
    async publish(appId, events) {
      await rooms.getByName(appId).publish(events);
    },
    subscribe: (appId, channel, signal) =>
      eventStream<LiveEvent>(signal, async (push, end) => {
        const room = await getServerByName(rooms, appId);
        // The caller's grants were checked by whoever subscribes; the room needs only the app.
        const member = {
          appId,
          subjectId: "subscription",
          permissions: ["gps:read"],
          revocation: { tokenId: "-", issuedAt: new Date(), subjects: [] },
        };
        const joined = await room.fetch(
          new Request("https://room.internal/v1/ws", {
            headers: { Upgrade: "websocket", [PRINCIPAL_HEADER]: encodePrincipal(member) },
          }),
        );
        const socket = joined.webSocket;
        if (!socket) throw new Error(`the room answered ${joined.status} to the upgrade`);
        socket.accept();
        socket.addEventListener("message", (message) => {
          const event = JSON.parse(String(message.data)) as LiveEvent | { type: string };
          if (event.type === "Position" || event.type === "DeviceStatus") push(event as LiveEvent);
        });
        socket.addEventListener("close", end);
        socket.send(JSON.stringify({ type: "Subscribe", channel }));
        return () => socket.close(1000, "unsubscribed");
      }),
  };
}
