/** The Redis limiter over the Upstash REST client, by the name the benchmarks build it with. */
export { createRedisLimiter as createUpstashLimiter } from "../redis/limiter";
