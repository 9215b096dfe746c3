import type { Redis } from "@upstash/redis";

/**
 * The Redis commands the revocation store sends, with the Upstash REST client's signatures: that
 * client is one as it is, and `createNodeRedis` (src/adapters/node/redis.ts) gives ioredis the
 * same shape, so one store serves both, over the same keys.
 */
export type RedisCommands = Pick<Redis, "get" | "set" | "mget" | "eval" | "ping">;

/**
 * One count of `slidingWindowScript` (./sliding-window.ts) against the window holding `now` and
 * the one before it; answers the requests left (negative when refused) and the limit.
 */
export type SlidingWindowCommand = (
  currentKey: string,
  previousKey: string,
  limit: number,
  now: number,
  windowMs: number,
) => Promise<[remaining: number, limit: number]>;

/**
 * What the limiter needs of a client: to run the sliding window itself (ioredis, through
 * `createNodeRedis`), or the commands `@upstash/ratelimit` sends it with (the Upstash REST
 * client): EVALSHA, and EVAL when that answers NOSCRIPT, which the library's type leaves out.
 */
export type LimiterCommands =
  | { slidingWindow: SlidingWindowCommand }
  | Pick<Redis, "get" | "set" | "eval" | "evalsha">;
