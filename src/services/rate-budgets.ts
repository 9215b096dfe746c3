import { eq, sql } from "drizzle-orm";
import { apps } from "../db/schema";
import type { AppSettings } from "../db/schema/settings";
import { createTtlCache } from "../lib/ttl-cache";
import type { Clock } from "../ports";
import type { ServiceContext } from "./context";

const APP_LIMITS_TTL_MS = 60_000;

export type RateBudgets = ReturnType<typeof createRateBudgets>;

/**
 * The per-minute budgets of the rate limits an app may set in its settings (token endpoints,
 * its own credentials), else the configured ones. An app's settings are read at most once a
 * minute per isolate.
 */
export function createRateBudgets(options: { clock: Clock }) {
  const appSettings = createTtlCache<Partial<AppSettings>>({
    ttlMs: APP_LIMITS_TTL_MS,
    maxEntries: 10_000,
    now: () => options.clock.now().getTime(),
  });

  function settingsOf(ctx: ServiceContext, by: "name" | "id", value: string) {
    return appSettings.get(`${by}:${value}`, async () => {
      const [row] = await ctx.db
        .select({ settings: apps.settings })
        .from(apps)
        .where(by === "name" ? sql`lower(${apps.name}) = lower(${value})` : eq(apps.id, value));
      return row?.settings ?? {};
    });
  }

  return {
    /** The sign-in budget of the app of a name (lower-cased). */
    async signIn(ctx: ServiceContext, appName: string) {
      return (
        (await settingsOf(ctx, "name", appName)).token_rate_limit_per_minute ??
        ctx.config.RATE_LIMIT_TOKEN_PER_MINUTE
      );
    },
    /** The budget of each credential of the app of an id. */
    async credential(ctx: ServiceContext, appId: string) {
      return (
        (await settingsOf(ctx, "id", appId)).default_rate_limit_per_minute ??
        ctx.config.RATE_LIMIT_DEFAULT_PER_MINUTE
      );
    },
  };
}
