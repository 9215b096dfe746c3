import { eq } from "drizzle-orm";
import { apps } from "../db/schema";
import type { Clock } from "../ports";
import type { ServiceContext } from "./context";

const APP_ORIGINS_TTL_MS = 60_000;

export type AppOrigins = ReturnType<typeof createAppOrigins>;

/** Every active app's `cors_origins` setting, read at most once a minute per isolate. */
export function createAppOrigins(options: { clock: Clock }) {
  let cached: { loadedAt: number; origins: Set<string> } | undefined;
  return {
    async has(ctx: ServiceContext, origin: string) {
      const now = options.clock.now().getTime();
      if (!cached || now - cached.loadedAt > APP_ORIGINS_TTL_MS) {
        const rows = await ctx.db
          .select({ settings: apps.settings })
          .from(apps)
          .where(eq(apps.status, "active"));
        cached = {
          loadedAt: now,
          origins: new Set(rows.flatMap((row) => row.settings.cors_origins ?? [])),
        };
      }
      return cached.origins.has(origin);
    },
  };
}
