import { Redis } from "@upstash/redis";

/**
 * A command that gets no answer within this time fails (a `TimeoutError`), so an Upstash that
 * accepts connections but never answers costs a request about a second, not forever; in-region
 * commands take milliseconds.
 */
const COMMAND_TIMEOUT_MS = 1_000;

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
    // A function: a fresh timer per command, and an aborted one throws (a shared signal would
    // answer "Aborted" as if it were the result).
    signal: () => AbortSignal.timeout(COMMAND_TIMEOUT_MS),
  });
}
