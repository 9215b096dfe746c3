import type { Realtime, RoomAddress } from "../../ports/realtime";

type Listener = (event: unknown) => void;

/** In-process rooms: what `publish` sends reaches every listener of that room, synchronously. */
export function createMemoryRealtime(): Realtime & {
  subscribe(room: RoomAddress, listener: Listener): () => void;
} {
  const rooms = new Map<string, Set<Listener>>();
  const keyOf = (room: RoomAddress) => `${room.appId}\u0000${room.channel}`;
  return {
    async publish(room, event) {
      for (const listener of rooms.get(keyOf(room)) ?? []) listener(event);
    },
    subscribe(room, listener) {
      const key = keyOf(room);
      const listeners = rooms.get(key) ?? new Set<Listener>();
      listeners.add(listener);
      rooms.set(key, listeners);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) rooms.delete(key);
      };
    },
  };
}
