import type { Redis } from "@upstash/redis";

/**
 * The Redis commands the revocation store and the limiter send, with the Upstash REST client's
 * signatures: that client is one as it is, and `createNodeRedis` (src/adapters/node/redis.ts)
 * gives ioredis the same shape, so one store and one limiter serve both, over the same keys.
 * `eval` is here although `@upstash/ratelimit`'s type leaves it out: the library falls back to it
 * when EVALSHA answers NOSCRIPT.
 */
export type RedisCommands = Pick<Redis, "get" | "set" | "mget" | "eval" | "evalsha" | "ping">;
