import { and, asc, eq, isNull } from "drizzle-orm";
import { pageOf } from "../db/page";
import { oauthClients, sessions } from "../db/schema";
import { PERMISSION_PATTERN } from "../db/schema/permission";
import { matchesRotatedSecret, randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import type { AppRecord } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { assertMayGrant, type Grantor } from "./permissions";
import { endSession } from "./session-lifecycle";

export type OAuthClientRecord = typeof oauthClients.$inferSelect;

/** The OpenID Connect scopes; every other scope is a Heimdall permission. */
export const OIDC_SCOPES = ["openid", "email", "profile"] as const;
const SECRET_PREFIX = "ocs_";
const ROTATION_GRACE_SECONDS = 3600;

export function clientView(row: OAuthClientRecord) {
  const { secret_hash: _secret, previous_secret_hash: _previous, ...fields } = row;
  return { ...fields, client_id: row.id };
}

/** Scopes must be OpenID Connect's or permissions the caller holds. */
function assertScopes(grantor: Grantor, scopes: string[]) {
  const bad = scopes.filter(
    (scope) =>
      !(OIDC_SCOPES as readonly string[]).includes(scope) && !PERMISSION_PATTERN.test(scope),
  );
  if (bad.length > 0) {
    throw new ApiError("validation_error", "Unknown scopes", {
      details: bad.map((scope) => ({
        field: "json.scopes",
        reason: `${scope} is neither openid, email, profile nor a permission`,
      })),
    });
  }
  assertMayGrant(
    grantor,
    scopes.filter((scope) => PERMISSION_PATTERN.test(scope)),
    "json.scopes",
  );
}

export async function listClients(
  ctx: ServiceContext,
  appId: string,
  page: { limit: number; offset: number },
) {
  const where = eq(oauthClients.app_id, appId);
  const { rows, total } = await pageOf(ctx.db, oauthClients, {
    where,
    order: [asc(oauthClients.id)],
    page,
  });
  return { data: rows.map(clientView), total };
}

export async function findClient(ctx: ServiceContext, appId: string, clientId: string) {
  const [row] = await ctx.db
    .select()
    .from(oauthClients)
    .where(and(eq(oauthClients.app_id, appId), eq(oauthClients.id, clientId)));
  if (!row) throw new ApiError("not_found", "No such OAuth client in this app");
  return row;
}

/** A confidential client's `client_secret` is in this answer only. */
export async function createClient(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    name: string;
    type: OAuthClientRecord["type"];
    redirect_uris: string[];
    scopes: string[];
  },
) {
  assertScopes(ctx.grantor, input.scopes);
  const secret = input.type === "confidential" ? randomSecret(SECRET_PREFIX) : undefined;
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [inserted] = await tx
        .insert(oauthClients)
        .values({
          id: newId("ocl"),
          app_id: app.id,
          name: input.name,
          type: input.type,
          redirect_uris: [...new Set(input.redirect_uris)],
          scopes: [...new Set(input.scopes)],
          secret_hash: secret ? await sha256Hex(secret) : null,
          created_at: now,
          updated_at: now,
        })
        .returning();
      if (!inserted) throw new Error("insert returned no row");
      return inserted;
    },
    (inserted) => ({
      appId: app.id,
      action: "oauth_client.created",
      target: { type: "oauth_client", id: inserted.id },
      metadata: { name: input.name, type: input.type, scopes: input.scopes },
    }),
  );
  return { ...clientView(row), ...(secret ? { client_secret: secret } : {}) };
}

export async function updateClient(
  ctx: ServiceContext,
  app: AppRecord,
  clientId: string,
  changes: {
    name?: string | undefined;
    redirect_uris?: string[] | undefined;
    scopes?: string[] | undefined;
  },
) {
  await findClient(ctx, app.id, clientId);
  if (changes.scopes) assertScopes(ctx.grantor, changes.scopes);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [updated] = await tx
        .update(oauthClients)
        .set({ ...changes, updated_at: now })
        .where(eq(oauthClients.id, clientId))
        .returning();
      if (!updated) throw new ApiError("not_found", "No such OAuth client in this app");
      return updated;
    },
    {
      appId: app.id,
      action: "oauth_client.updated",
      target: { type: "oauth_client", id: clientId },
      metadata: { fields: Object.keys(changes) },
    },
  );
  return clientView(row);
}

/** A new secret; the old one keeps working for an hour, so deployments can roll over. */
export async function rotateClientSecret(ctx: ServiceContext, app: AppRecord, clientId: string) {
  const current = await findClient(ctx, app.id, clientId);
  if (current.type !== "confidential") {
    throw new ApiError("conflict", "A public client has no secret");
  }
  const secret = randomSecret(SECRET_PREFIX);
  const secretHash = await sha256Hex(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [updated] = await tx
        .update(oauthClients)
        .set({
          secret_hash: secretHash,
          previous_secret_hash: current.secret_hash,
          previous_secret_expires_at: new Date(now.getTime() + ROTATION_GRACE_SECONDS * 1000),
          updated_at: now,
        })
        .where(eq(oauthClients.id, clientId))
        .returning();
      if (!updated) throw new ApiError("not_found", "No such OAuth client in this app");
      return updated;
    },
    {
      appId: app.id,
      action: "oauth_client.secret_rotated",
      target: { type: "oauth_client", id: clientId },
    },
  );
  return { ...clientView(row), client_secret: secret };
}

/**
 * Deletes a client and ends every session it holds: their refresh and access tokens stop working
 * now, not when they expire (its grants and codes go with it).
 */
export async function deleteClient(ctx: ServiceContext, app: AppRecord, clientId: string) {
  await findClient(ctx, app.id, clientId);
  const now = ctx.clock.now();
  const open = await ctx.db
    .select({ id: sessions.id })
    .from(sessions)
    .where(and(eq(sessions.client_id, clientId), isNull(sessions.revoked_at)));
  for (const session of open) {
    await endSession(ctx, session.id, "client_deleted", now);
  }
  await audited(ctx, (tx) => tx.delete(oauthClients).where(eq(oauthClients.id, clientId)), {
    appId: app.id,
    action: "oauth_client.deleted",
    target: { type: "oauth_client", id: clientId },
    metadata: { sessions: open.length },
  });
}

/**
 * Client authentication at the token endpoint: a confidential client must present its secret
 * (the previous one during the rotation grace); a public client must not have one.
 */
export async function authenticateClient(
  db: Database,
  app: AppRecord,
  input: { clientId: string; clientSecret?: string | undefined },
  now: Date,
) {
  const [client] = await db
    .select()
    .from(oauthClients)
    .where(and(eq(oauthClients.app_id, app.id), eq(oauthClients.id, input.clientId)));
  const authenticated =
    client &&
    (client.type === "public"
      ? input.clientSecret === undefined
      : input.clientSecret !== undefined &&
        (await matchesRotatedSecret(input.clientSecret, client, now)) !== false);
  if (!client || !authenticated) {
    throw new ApiError("invalid_client", "Client authentication failed", {
      headers: { "WWW-Authenticate": `Basic realm="heimdall"` },
    });
  }
  return client;
}
