import { desc, eq, sql } from "drizzle-orm";
import { apps, roles } from "../db/schema";
import type { AppSettings } from "../db/schema/settings";
import { ApiError, type ErrorCode } from "../lib/errors";
import { newId } from "../lib/ids";
import { type AuditEvent, audited, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { MAX_ACCESS_TOKEN_TTL_SECONDS, resolveSettings } from "./settings";

export type AppRecord = typeof apps.$inferSelect;

/**
 * The app of a name (case-insensitive), or 404. Cached per isolate (`ctx.appsByName`): every
 * change of an app goes through {@link changeApp}, which invalidates it.
 */
export async function findAppByName(ctx: ServiceContext, name: string): Promise<AppRecord> {
  const load = async () => {
    const [row] = await ctx.db
      .select()
      .from(apps)
      .where(sql`lower(${apps.name}) = lower(${name})`)
      .limit(1);
    return row;
  };
  // App names are ASCII; another name is looked up as it is, never aliased to a cached one.
  const app = /^[\x21-\x7e]+$/.test(name)
    ? await ctx.appsByName.get(name.toLowerCase(), load)
    : await load();
  if (!app) throw new ApiError("not_found", `No app named ${name}`);
  return app;
}

export async function findAppById(ctx: ServiceContext, id: string): Promise<AppRecord> {
  const [app] = await ctx.db.select().from(apps).where(eq(apps.id, id)).limit(1);
  if (!app) throw new ApiError("not_found", "No such app");
  return app;
}

/** The apps, newest first, optionally of one status. */
export async function listApps(
  ctx: ServiceContext,
  filter: { status?: AppRecord["status"] | undefined },
  page: { limit: number; offset: number },
): Promise<{ data: AppRecord[]; total: number }> {
  const where = filter.status ? eq(apps.status, filter.status) : undefined;
  const [data, total] = await Promise.all([
    ctx.db
      .select()
      .from(apps)
      .where(where)
      .orderBy(desc(apps.created_at))
      .limit(page.limit)
      .offset(page.offset),
    ctx.db.$count(apps, where),
  ]);
  return { data, total };
}

export function settingsOf(app: AppRecord) {
  return resolveSettings(app.settings);
}

/** What a request that needs an active app is told when the app is archived. */
export const appArchivedMessage = "The app is archived";

/** Signing in and issuing tokens need an active app; `code` is the refusal the caller answers. */
export function assertAppActive(app: Pick<AppRecord, "status">, code: ErrorCode) {
  if (app.status !== "active") throw new ApiError(code, appArchivedMessage);
}

/** How long a subject-wide revocation must be remembered: past any access token's life. */
export function revocationHorizon(now: Date): Date {
  return new Date(now.getTime() + (MAX_ACCESS_TOKEN_TTL_SECONDS + 60) * 1000);
}

const appTarget = (app: { id: string }) => ({ type: "app", id: app.id });

/** Every app starts with these roles; API keys take one of the `api-*` ones or a custom role. */
export const builtInRoles = [
  { name: "admin", display_name: "Admin", permissions: ["*:*"] },
  { name: "api-read-only", display_name: "API Read Only", permissions: ["*:read"] },
  { name: "api-full-access", display_name: "API Full Access", permissions: ["*:*"] },
];

/** Creates an app with its built-in roles. 409 when the name is taken. */
export async function createApp(
  ctx: ServiceContext,
  input: { name: string; display_name: string; metadata?: Record<string, unknown> | undefined },
) {
  await ctx.db
    .select({ id: apps.id })
    .from(apps)
    .where(sql`lower(${apps.name}) = lower(${input.name})`)
    .then(([taken]) => {
      if (taken) throw new ApiError("conflict", `An app named ${input.name} exists already`);
    });
  return audited(
    ctx,
    async (tx, now) => {
      const [app] = await tx
        .insert(apps)
        .values({
          id: newId("app"),
          name: input.name,
          display_name: input.display_name,
          metadata: input.metadata ?? {},
          created_at: now,
          updated_at: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!app) throw new ApiError("conflict", `An app named ${input.name} exists already`);
      await tx.insert(roles).values(
        builtInRoles.map((role) => ({
          ...role,
          id: newId("role"),
          app_id: app.id,
          created_at: now,
          updated_at: now,
        })),
      );
      return app;
    },
    (app) => ({ appId: app.id, action: "app.created", target: appTarget(app) }),
  );
}

/**
 * The one writer of an existing app's row: the change and its audit event in one transaction,
 * then the app's cached copies dropped in every process (`ctx.appsByName`) before the caller
 * answers. `test/token-caches.test.ts` fails when another function writes `apps`.
 */
async function changeApp(
  ctx: ServiceContext,
  app: AppRecord,
  changes: Partial<Omit<AppRecord, "id" | "created_at" | "updated_at">>,
  event: AuditEvent,
): Promise<{ app: AppRecord; at: Date }> {
  let at = ctx.clock.now();
  const changed = await audited(
    ctx,
    async (tx, now) => {
      at = now;
      const [row] = await tx
        .update(apps)
        .set({ ...changes, updated_at: now })
        .where(eq(apps.id, app.id))
        .returning();
      return row ?? app;
    },
    event,
  );
  await ctx.appsByName.changed(app.id);
  return { app: changed, at };
}

export async function updateApp(
  ctx: ServiceContext,
  app: AppRecord,
  changes: { display_name?: string | undefined; metadata?: Record<string, unknown> | undefined },
) {
  const { app: updated } = await changeApp(ctx, app, changes, {
    appId: app.id,
    action: "app.updated",
    target: appTarget(app),
    metadata: { fields: Object.keys(changes) },
  });
  return updated;
}

/** Archives an app; its live tokens stop authorizing at once through the revocation store. */
export async function archiveApp(ctx: ServiceContext, app: AppRecord) {
  const { app: archived, at: archivedAt } = await changeApp(
    ctx,
    app,
    { status: "archived" },
    { appId: app.id, action: "app.archived", target: appTarget(app) },
  );
  await ctx.revocations.revokeIssuedBefore(
    `app:${app.id}`,
    archivedAt,
    revocationHorizon(archivedAt),
  );
  return archived;
}

/** Changes settings; returns the resolved settings and whether the signing algorithm changed. */
export async function updateSettings(
  ctx: ServiceContext,
  app: AppRecord,
  changes: Partial<AppSettings>,
) {
  const before = resolveSettings(app.settings);
  const stored = { ...app.settings, ...changes };
  const after = resolveSettings(stored);
  await changeApp(
    ctx,
    app,
    { settings: stored },
    {
      appId: app.id,
      action: "settings.updated",
      target: appTarget(app),
      metadata: { fields: Object.keys(changes) },
    },
  );
  return {
    settings: after,
    algorithmChanged: before.signing_algorithm !== after.signing_algorithm,
  };
}

export async function recordKeyRotation(ctx: ServiceContext, app: AppRecord, kid: string) {
  await recordAudit(
    ctx,
    { appId: app.id, action: "keys.rotated", target: { type: "signing_key", id: kid } },
    ctx.clock.now(),
  );
}
