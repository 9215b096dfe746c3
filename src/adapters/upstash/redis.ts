import { Redis } from "@upstash/redis";

/** An Upstash REST client from explicit settings (never from `process.env` behind our back). */
export function createUpstashRedis(options: { url: string; token: string }): Redis {
  return new Redis({ url: options.url, token: options.token, enableTelemetry: false });
}
