export interface RateLimitRule {
  /** Requests allowed per window. */
  limit: number;
  windowMs: number;
}

export interface RateLimitResult {
  success: boolean;
  limit: number;
  remaining: number;
  /** When the window frees up again, in Unix milliseconds. */
  reset: number;
}

/**
 * Sliding-window rate limiting by key. Adapters must be exact under concurrency: of N parallel
 * calls against a limit of L, at most L succeed.
 */
export interface Limiter {
  limit(key: string, rule: RateLimitRule): Promise<RateLimitResult>;
}
