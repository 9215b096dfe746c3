import { Repeater, SlidingBuffer } from "graphql-yoga";

/** How many undelivered events a slow consumer may hold before the oldest are dropped. */
const BUFFERED_EVENTS = 256;

/**
 * An async stream of what `listen` pushes, until `signal` aborts or `listen`'s source ends.
 * `listen` returns how to stop listening; a slow consumer loses the oldest events.
 *
 * @example
 * eventStream<LiveEvent>(signal, (push) => emitter.on(push));
 */
export function eventStream<T>(
  signal: AbortSignal,
  listen: (push: (value: T) => void, end: () => void) => (() => void) | Promise<() => void>,
): AsyncIterable<T> {
  return new Repeater<T>(async (push, stop) => {
    if (signal.aborted) return stop();
    signal.addEventListener("abort", () => stop(), { once: true });
    const unlisten = await listen(
      (value) => void push(value),
      () => stop(),
    );
    await stop;
    unlisten();
  }, new SlidingBuffer(BUFFERED_EVENTS));
}
