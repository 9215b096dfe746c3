import type { Limiter, Logger } from "../ports";

/**
 * Rate limiting fails open: when the store cannot be reached the request passes and an error is
 * logged. An outage of Redis must not take the API down with it.
 */
export function failOpen(limiter: Limiter, logger: Logger): Limiter {
  return {
    async limit(key, rule) {
      try {
        return await limiter.limit(key, rule);
      } catch (error) {
        logger.error("rate limiter unavailable; request allowed", { error });
        return {
          success: true,
          limit: rule.limit,
          remaining: rule.limit,
          reset: Date.now() + rule.windowMs,
        };
      }
    },
  };
}
