import type { Clock } from "../../ports/clock";
import type { Limiter } from "../../ports/limiter";

/**
 * In-process sliding window, the same approximation `@upstash/ratelimit` uses: the previous
 * window's count weighted by how much of it still overlaps the sliding window.
 */
export function createMemoryLimiter(clock: Clock): Limiter {
  const windows = new Map<string, { start: number; current: number; previous: number }>();
  let sweepAtSize = 1024;

  /** Forgets keys idle for two windows; run whenever the map has doubled, so O(1) amortised. */
  const sweep = (now: number) => {
    for (const [id, window] of windows) {
      const windowMs = Number(id.slice(0, id.indexOf(":")));
      if (window.start + 2 * windowMs <= now) windows.delete(id);
    }
    sweepAtSize = Math.max(1024, windows.size * 2);
  };

  return {
    async limit(key, { limit, windowMs }) {
      const now = clock.now().getTime();
      const start = now - (now % windowMs);
      const id = `${windowMs}:${key}`;
      if (windows.size >= sweepAtSize) sweep(now);
      let window = windows.get(id);
      if (!window || window.start < start - windowMs) {
        window = { start, current: 0, previous: 0 };
      } else if (window.start < start) {
        window = { start, current: 0, previous: window.current };
      }
      windows.set(id, window);

      const overlap = 1 - (now - start) / windowMs;
      const used = Math.floor(window.previous * overlap) + window.current;
      const reset = start + windowMs;
      if (used >= limit) return { success: false, limit, remaining: 0, reset };
      window.current += 1;
      return { success: true, limit, remaining: Math.max(0, limit - used - 1), reset };
    },
  };
}
