import { and, asc, eq } from "drizzle-orm";
import { pageOf } from "../db/page";
import { platforms } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { AppRecord } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { platformMessages } from "./platforms.messages";

export type PlatformRecord = typeof platforms.$inferSelect;
export type PlatformView = Omit<PlatformRecord, "client_secret_encrypted">;

/** The provider URLs a platform may store (else discovered from its issuer). */
export const ENDPOINT_FIELDS = [
  "issuer",
  "authorization_endpoint",
  "token_endpoint",
  "jwks_uri",
  "userinfo_endpoint",
] as const;

export function platformView(row: PlatformRecord): PlatformView {
  const { client_secret_encrypted: _secret, ...fields } = row;
  return fields;
}

const noSuchPlatform = () => new ApiError("not_found", platformMessages.noSuchPlatform);
const nameTaken = () => new ApiError("conflict", platformMessages.nameTaken);

export async function findPlatform(ctx: ServiceContext, app: AppRecord, id: string) {
  const [row] = await ctx.db
    .select()
    .from(platforms)
    .where(and(eq(platforms.app_id, app.id), eq(platforms.id, id)));
  if (!row) throw noSuchPlatform();
  return row;
}

export async function findPlatformByName(ctx: ServiceContext, app: AppRecord, name: string) {
  const [row] = await ctx.db
    .select()
    .from(platforms)
    .where(and(eq(platforms.app_id, app.id), eq(platforms.name, name)));
  if (!row) throw noSuchPlatform();
  return row;
}

export async function listPlatforms(
  ctx: ServiceContext,
  app: AppRecord,
  page: { limit: number; offset: number },
) {
  const where = eq(platforms.app_id, app.id);
  const { rows, total } = await pageOf(ctx.db, platforms, {
    where,
    order: [asc(platforms.id)],
    page,
  });
  return { data: rows.map(platformView), total };
}

export interface PlatformInput {
  display_name: string;
  issuer: string;
  authorization_endpoint?: string | undefined;
  token_endpoint?: string | undefined;
  jwks_uri?: string | undefined;
  userinfo_endpoint?: string | undefined;
  client_id: string;
  client_secret?: string | undefined;
  scopes: string[];
  claim_mapping: { email?: string | undefined; name?: string | undefined };
  /** Only the platform admin may set it (checked by the caller, which knows who asks). */
  trusted?: boolean | undefined;
}

/** Every provider URL is one Heimdall will fetch: checked by the outbound policy at save. */
const assertFetchableUrls = (ctx: ServiceContext, input: Partial<PlatformInput>) =>
  ctx.outbound.assertAllowed(
    Object.fromEntries(ENDPOINT_FIELDS.map((field) => [field, input[field]])),
  );

const withoutUndefined = (mapping: PlatformInput["claim_mapping"]) =>
  Object.fromEntries(
    Object.entries(mapping).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );

export async function createPlatform(
  ctx: ServiceContext,
  app: AppRecord,
  input: PlatformInput & { name: string },
): Promise<PlatformView> {
  await assertFetchableUrls(ctx, input);
  const secret = input.client_secret ? await ctx.sealer.encrypt(input.client_secret) : null;
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [inserted] = await tx
        .insert(platforms)
        .values({
          id: newId("plt"),
          app_id: app.id,
          name: input.name,
          display_name: input.display_name,
          issuer: input.issuer,
          authorization_endpoint: input.authorization_endpoint ?? null,
          token_endpoint: input.token_endpoint ?? null,
          jwks_uri: input.jwks_uri ?? null,
          userinfo_endpoint: input.userinfo_endpoint ?? null,
          client_id: input.client_id,
          client_secret_encrypted: secret,
          scopes: input.scopes,
          claim_mapping: withoutUndefined(input.claim_mapping),
          trusted: input.trusted ?? false,
          created_at: now,
          updated_at: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!inserted) throw nameTaken();
      return inserted;
    },
    (inserted) => ({
      appId: app.id,
      action: "platform.created",
      target: { type: "platform", id: inserted.id },
      metadata: { name: inserted.name, issuer: inserted.issuer },
    }),
  );
  return platformView(row);
}

/** Changes only the fields given; a new `client_secret` replaces the stored one. */
export async function updatePlatform(
  ctx: ServiceContext,
  app: AppRecord,
  id: string,
  changes: Partial<PlatformInput>,
): Promise<PlatformView> {
  await findPlatform(ctx, app, id);
  await assertFetchableUrls(ctx, changes);
  const { client_secret: secret, claim_mapping: mapping, ...fields } = changes;
  const sealed = secret === undefined ? undefined : await ctx.sealer.encrypt(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [updated] = await tx
        .update(platforms)
        .set({
          ...fields,
          ...(sealed === undefined ? {} : { client_secret_encrypted: sealed }),
          ...(mapping === undefined ? {} : { claim_mapping: withoutUndefined(mapping) }),
          updated_at: now,
        })
        .where(and(eq(platforms.app_id, app.id), eq(platforms.id, id)))
        .returning();
      if (!updated) throw noSuchPlatform();
      return updated;
    },
    {
      appId: app.id,
      action: "platform.updated",
      target: { type: "platform", id },
      metadata: { fields: Object.keys(changes) },
    },
  );
  return platformView(row);
}

/** Deletes a platform; its users stay, their links to it (and sign-ins under way) go. */
export async function deletePlatform(ctx: ServiceContext, app: AppRecord, id: string) {
  const platform = await findPlatform(ctx, app, id);
  await audited(
    ctx,
    (tx) => tx.delete(platforms).where(and(eq(platforms.app_id, app.id), eq(platforms.id, id))),
    {
      appId: app.id,
      action: "platform.deleted",
      target: { type: "platform", id },
      metadata: { name: platform.name },
    },
  );
}
