import { Redis } from "@upstash/redis";

/**
 * An Upstash REST client from explicit settings (never from `process.env` behind our back).
 * One quick retry on network errors: it sits on the request path, where the client's default
 * (five retries, exponential backoff) would hold a request for seconds.
 */
export function createUpstashRedis(options: { url: string; token: string }): Redis {
  return new Redis({
    url: options.url,
    token: options.token,
    enableTelemetry: false,
    retry: { retries: 1, backoff: () => 50 },
  });
}
