import { and, asc, eq } from "drizzle-orm";
import { apiKeys, roles } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { API_KEY_PREFIX } from "./api-key-verifier";
import type { AppRecord } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { assertMayGrant } from "./permissions";

/** A revoked key is refused through the revocation store until every isolate's cache expired. */
const REVOCATION_MARKER_MS = 10 * 60_000;

export type ApiKeyRecord = typeof apiKeys.$inferSelect;
export type ApiKeyView = Omit<ApiKeyRecord, "key_hash" | "role_id"> & { role: string };

const keyColumns = { key: apiKeys, role: roles.name };

function view(row: { key: ApiKeyRecord; role: string }): ApiKeyView {
  const { key_hash: _hash, role_id: _role, ...fields } = row.key;
  return { ...fields, role: row.role };
}

export async function listApiKeys(
  ctx: ServiceContext,
  appId: string,
  page: { limit: number; offset: number },
) {
  const where = eq(apiKeys.app_id, appId);
  const [rows, total] = await Promise.all([
    ctx.db
      .select(keyColumns)
      .from(apiKeys)
      .innerJoin(roles, eq(roles.id, apiKeys.role_id))
      .where(where)
      .orderBy(asc(apiKeys.id))
      .limit(page.limit)
      .offset(page.offset),
    ctx.db.$count(apiKeys, where),
  ]);
  return { data: rows.map(view), total };
}

export async function findApiKey(
  ctx: ServiceContext,
  appId: string,
  id: string,
): Promise<ApiKeyView> {
  const [row] = await ctx.db
    .select(keyColumns)
    .from(apiKeys)
    .innerJoin(roles, eq(roles.id, apiKeys.role_id))
    .where(and(eq(apiKeys.app_id, appId), eq(apiKeys.id, id)));
  if (!row) throw new ApiError("not_found", "No such API key in this app");
  return view(row);
}

/** Creates a key; the secret is in the answer only. */
export async function createApiKey(
  ctx: ServiceContext,
  app: AppRecord,
  input: { name: string; role: string; expires_at?: string | undefined },
): Promise<ApiKeyView & { key: string }> {
  const [role] = await ctx.db
    .select()
    .from(roles)
    .where(and(eq(roles.app_id, app.id), eq(roles.name, input.role)));
  if (!role) {
    throw new ApiError("validation_error", "Unknown role", {
      details: [{ field: "json.role", reason: `no role named ${input.role}` }],
    });
  }
  assertMayGrant(ctx.grantor, role.permissions, "json.role");
  const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
  if (expiresAt && expiresAt <= ctx.clock.now()) {
    throw new ApiError("validation_error", "The key would be expired already", {
      details: [{ field: "json.expires_at", reason: "must be in the future" }],
    });
  }
  const secret = randomSecret(API_KEY_PREFIX);
  const keyHash = await sha256Hex(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [inserted] = await tx
        .insert(apiKeys)
        .values({
          id: newId("key"),
          app_id: app.id,
          name: input.name,
          prefix: secret.slice(0, 10),
          key_hash: keyHash,
          role_id: role.id,
          created_by: ctx.audit.actorId,
          created_at: now,
          expires_at: expiresAt,
        })
        .returning();
      if (!inserted) throw new Error("insert returned no row");
      return inserted;
    },
    (inserted) => ({
      appId: app.id,
      action: "api_key.created",
      target: { type: "api_key", id: inserted.id },
      metadata: { name: input.name, role: role.name },
    }),
  );
  return { ...view({ key: row, role: role.name }), key: secret };
}

export async function revokeApiKey(ctx: ServiceContext, app: AppRecord, id: string) {
  const key = await findApiKey(ctx, app.id, id);
  if (key.revoked_at) return key;
  const revoked = await audited(
    ctx,
    async (tx, now) => {
      await tx.update(apiKeys).set({ revoked_at: now }).where(eq(apiKeys.id, id));
      return { ...key, revoked_at: now };
    },
    { appId: app.id, action: "api_key.revoked", target: { type: "api_key", id } },
  );
  const now = ctx.clock.now();
  ctx.apiKeys.forget(id);
  await ctx.revocations.revoke(id, new Date(now.getTime() + REVOCATION_MARKER_MS));
  return revoked;
}
