/**
 * `@upstash/core-analytics` as the Worker bundles it (wrangler.toml `[alias]`): left out.
 * `@upstash/ratelimit` builds its analytics only for a limiter made with `analytics: true`, and
 * Heimdall's (src/adapters/redis/limiter.ts) are made with `analytics: false`; one made otherwise
 * fails here when it is built rather than dropping its analytics unseen.
 */
export class Analytics {
  constructor() {
    throw new Error(
      "@upstash/ratelimit's analytics are not in the Worker bundle (wrangler.toml [alias]): build the limiter with analytics: false",
    );
  }
}
