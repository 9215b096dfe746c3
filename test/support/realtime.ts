import { createMemoryRealtime } from "../../src/adapters/memory/realtime";
import type { Realtime } from "../../src/ports";

/**
 * The in-process rooms, counting the subscriptions that listen to a room: a subscription
 * listens once its consumer asks for the first event (the memory rooms add the listener
 * synchronously then), so a test can wait for that instead of for a while.
 */
export function createObservedRealtime() {
  const rooms = createMemoryRealtime();
  let listening = 0;
  const realtime: Realtime = {
    publish: rooms.publish,
    subscribe(appId, channel, signal) {
      const events = rooms.subscribe(appId, channel, signal);
      return {
        [Symbol.asyncIterator]() {
          const iterator = events[Symbol.asyncIterator]();
          let started = false;
          return {
            next() {
              const next = iterator.next();
              if (!started) {
                started = true;
                listening++;
              }
              return next;
            },
            return: (value) => iterator.return?.(value) ?? Promise.resolve({ done: true, value }),
          };
        },
      };
    },
  };
  return { realtime, listening: () => listening };
}
