import { eq } from "drizzle-orm";
import { apps } from "../db/schema";
import { findAppByName } from "./apps";
import type { ServiceContext } from "./context";

/** The public signing keys of every active app. */
export async function platformJwks(ctx: ServiceContext) {
  const active = await ctx.db.select({ id: apps.id }).from(apps).where(eq(apps.status, "active"));
  if (active.length === 0) return [];
  return ctx.keys.jwks(
    ctx.db,
    active.map((a) => a.id),
  );
}

/** The public signing keys of the app of a name; none once it is archived. 404 if unknown. */
export async function appJwks(ctx: ServiceContext, appName: string) {
  const app = await findAppByName(ctx, appName);
  return app.status === "active" ? ctx.keys.jwks(ctx.db, [app.id]) : [];
}
