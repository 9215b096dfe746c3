import { Ratelimit } from "@upstash/ratelimit";
import type { Limiter, RateLimitRule } from "../../ports/limiter";
import type { LimiterCommands, SlidingWindowCommand } from "./commands";

/**
 * `@upstash/ratelimit`'s sliding window, over its keys whichever the client: through the library
 * for the Upstash REST client, or its script sent by the client itself where the client can
 * (`createNodeRedis`), which spares the library's per-call promises, timer and arrays.
 */
export function createRedisLimiter(
  redis: LimiterCommands,
  options: { prefix?: string } = {},
): Limiter {
  const prefix = options.prefix ?? "heimdall:ratelimit";
  if ("slidingWindow" in redis) return slidingWindowLimiter(redis.slidingWindow, prefix);

  const limiters = new Map<string, Ratelimit>();
  const limiterFor = ({ limit, windowMs }: RateLimitRule) => {
    const id = `${limit}/${windowMs}`;
    let limiter = limiters.get(id);
    if (!limiter) {
      limiter = new Ratelimit({
        redis,
        limiter: Ratelimit.slidingWindow(limit, `${windowMs} ms`),
        prefix: `${prefix}:${id}`,
        analytics: false,
      });
      limiters.set(id, limiter);
    }
    return limiter;
  };

  return {
    async limit(key, rule) {
      const { success, limit, remaining, reset } = await limiterFor(rule).limit(key);
      return { success, limit, remaining, reset };
    },
  };
}

/**
 * What `Ratelimit.slidingWindow(limit, windowMs).limit(key)` does with one Ratelimit per rule
 * (prefixed `<prefix>:<limit>/<windowMs>`), its ephemeral cache included: a key refused stays
 * refused in this process until its window ends, without asking Redis.
 */
function slidingWindowLimiter(slidingWindow: SlidingWindowCommand, prefix: string): Limiter {
  const refusedUntil = new Map<string, number>();
  return {
    async limit(key, { limit, windowMs }) {
      const id = `${prefix}:${limit}/${windowMs}:${key}`;
      const now = Date.now();
      const until = refusedUntil.get(id);
      if (until !== undefined) {
        if (until >= now) return { success: false, limit, remaining: 0, reset: until };
        refusedUntil.delete(id);
      }
      const window = Math.floor(now / windowMs);
      const reset = (window + 1) * windowMs;
      const [remaining, effectiveLimit] = await slidingWindow(
        `${id}:${window}`,
        `${id}:${window - 1}`,
        limit,
        now,
        windowMs,
      );
      if (remaining < 0) {
        refusedUntil.set(id, reset);
        return { success: false, limit: effectiveLimit, remaining: 0, reset };
      }
      return { success: true, limit: effectiveLimit, remaining, reset };
    },
  };
}
