import { eventStream } from "../../lib/event-stream";
import type { LiveEvent, Realtime } from "../../ports/realtime";

type Listener = (event: LiveEvent) => void;

/** In-process rooms: what `publish` sends reaches every listener of its app and channel, synchronously. */
export function createMemoryRealtime(): Realtime & {
  listen(room: { appId: string; channel: string }, listener: Listener): () => void;
} {
  const rooms = new Map<string, Set<Listener>>();
  const keyOf = (appId: string, channel: string) => `${appId}\u0000${channel}`;
  const listen = ({ appId, channel }: { appId: string; channel: string }, listener: Listener) => {
    const key = keyOf(appId, channel);
    const listeners = rooms.get(key) ?? new Set<Listener>();
    listeners.add(listener);
    rooms.set(key, listeners);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) rooms.delete(key);
    };
  };
  return {
    async publish(appId, events) {
      for (const event of events) {
        for (const listener of rooms.get(keyOf(appId, event.channel)) ?? []) listener(event);
      }
    },
    subscribe: (appId, channel, signal) =>
      eventStream(signal, (push) => listen({ appId, channel }, push)),
    listen,
  };
}
