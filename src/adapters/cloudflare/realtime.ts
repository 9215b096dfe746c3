import type { GpsRoom } from "../../../party/gps-room";
import type { Realtime } from "../../ports/realtime";

/** The app's Durable Object room (one per app, named by its id) takes the events by RPC. */
export function createDurableObjectRealtime(rooms: DurableObjectNamespace<GpsRoom>): Realtime {
  return {
    async publish(appId, events) {
      await rooms.getByName(appId).publish(events);
    },
  };
}
