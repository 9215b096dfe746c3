import type { Config } from "../config";
import type { Clock, Limiter, RevocationStore } from "../ports";
import { createMemoryLimiter } from "./memory/limiter";
import { createMemoryRevocationStore } from "./memory/revocations";
import { createUpstashLimiter } from "./upstash/limiter";
import { createUpstashRedis } from "./upstash/redis";
import { createUpstashRevocationStore } from "./upstash/revocations";

/**
 * The shared-state ports (revocations, rate limits): Upstash Redis when configured, so every
 * isolate and process sees the same state; in-memory otherwise (one process only).
 */
export function createCacheAdapters(
  config: Config,
  clock: Clock,
): { cache: "upstash" | "memory"; revocations: RevocationStore; limiter: Limiter } {
  if (config.UPSTASH_REDIS_REST_URL && config.UPSTASH_REDIS_REST_TOKEN) {
    const redis = createUpstashRedis({
      url: config.UPSTASH_REDIS_REST_URL,
      token: config.UPSTASH_REDIS_REST_TOKEN,
    });
    return {
      cache: "upstash",
      revocations: createUpstashRevocationStore(redis, clock),
      limiter: createUpstashLimiter(redis),
    };
  }
  return {
    cache: "memory",
    revocations: createMemoryRevocationStore(clock),
    limiter: createMemoryLimiter(clock),
  };
}
