import { Ratelimit } from "@upstash/ratelimit";
import type { Limiter, RateLimitRule } from "../../ports/limiter";
import type { RedisCommands } from "./commands";

/**
 * `@upstash/ratelimit`'s sliding window over any Redis client speaking {@link RedisCommands} (the
 * library's own client type is structural): one Ratelimit per distinct rule, built on first use.
 */
export function createRedisLimiter(
  redis: RedisCommands,
  options: { prefix?: string } = {},
): Limiter {
  const prefix = options.prefix ?? "heimdall:ratelimit";
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
