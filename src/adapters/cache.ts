import type { Config } from "../config";
import type { Clock, Limiter, RevocationStore } from "../ports";
import { createMemoryLimiter } from "./memory/limiter";
import { createMemoryRevocationStore } from "./memory/revocations";
import type { RedisCommands, SlidingWindowCommand } from "./redis/commands";
import { createRedisLimiter } from "./redis/limiter";
import { createRedisRevocationStore } from "./redis/revocations";
import { createUpstashRedis } from "./upstash/redis";

/** A runtime's way to a plain Redis (on Node, ioredis over TCP), for `REDIS_URL`. */
export type ConnectRedis = (
  url: string,
) => RedisCommands & { slidingWindow: SlidingWindowCommand; close(): Promise<void> };

/**
 * The shared-state ports (revocations, rate limits), so every isolate and process sees the same
 * state: Upstash Redis when configured; else the plain Redis of `REDIS_URL` where the runtime can
 * open one (`connectRedis`: Node); in-memory otherwise (one process only). Both Redis paths run
 * the same store and limiter over the same keys, so they can share one Redis. Upstash comes first
 * so that setting `REDIS_URL` for the live fan-out never moves where revocations are kept.
 */
export function createCacheAdapters(
  config: Config,
  clock: Clock,
  options: { connectRedis?: ConnectRedis } = {},
): {
  cache: "upstash" | "redis" | "memory";
  revocations: RevocationStore;
  limiter: Limiter;
  close(): Promise<void>;
} {
  if (config.UPSTASH_REDIS_REST_URL && config.UPSTASH_REDIS_REST_TOKEN) {
    const redis = createUpstashRedis({
      url: config.UPSTASH_REDIS_REST_URL,
      token: config.UPSTASH_REDIS_REST_TOKEN,
    });
    return {
      cache: "upstash",
      revocations: createRedisRevocationStore(redis, clock),
      limiter: createRedisLimiter(redis),
      close: async () => {},
    };
  }
  if (config.REDIS_URL && options.connectRedis) {
    const redis = options.connectRedis(config.REDIS_URL);
    return {
      cache: "redis",
      revocations: createRedisRevocationStore(redis, clock),
      limiter: createRedisLimiter(redis),
      close: () => redis.close(),
    };
  }
  return {
    cache: "memory",
    revocations: createMemoryRevocationStore(clock),
    limiter: createMemoryLimiter(clock),
    close: async () => {},
  };
}
