import { and, asc, eq } from "drizzle-orm";
import { pageOf } from "../db/page";
import { serviceCredentials } from "../db/schema";
import { matchesRotatedSecret, randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import { signAccessToken } from "./access-tokens";
import { type AppRecord, assertAppActive, revocationHorizon, settingsOf } from "./apps";
import { type AuditEvent, audited, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { assertMayGrant, hasPermission } from "./permissions";

export type CredentialRecord = typeof serviceCredentials.$inferSelect;
export type CredentialView = Omit<CredentialRecord, "secret_hash" | "previous_secret_hash">;

const DEFAULT_GRACE_SECONDS = 3600;

function view(row: CredentialRecord): CredentialView {
  const { secret_hash: _secret, previous_secret_hash: _previous, ...fields } = row;
  return fields;
}

const credentialTarget = (id: string) => ({ type: "service_credential", id });

/**
 * The one writer of an existing credential's row: the change and its audit event in one
 * transaction, then the credential's cached copies dropped in every process
 * (`ctx.credentialsByClientId`) before the caller answers. `last_used_at` alone is written by
 * `credential-usage.ts`. `test/token-caches.test.ts` fails when another function writes
 * `service_credentials`.
 */
async function changeCredential(
  ctx: ServiceContext,
  current: CredentialRecord,
  changes: (now: Date) => Partial<Omit<CredentialRecord, "id" | "app_id" | "client_id">>,
  event: AuditEvent,
): Promise<{ credential: CredentialRecord; at: Date }> {
  let at = ctx.clock.now();
  const credential = await audited(
    ctx,
    async (tx, now) => {
      at = now;
      const [updated] = await tx
        .update(serviceCredentials)
        .set({ ...changes(now), updated_at: now })
        .where(eq(serviceCredentials.id, current.id))
        .returning();
      return updated ?? current;
    },
    event,
  );
  await ctx.credentialsByClientId.changed(current.id);
  return { credential, at };
}

export async function listCredentials(
  ctx: ServiceContext,
  appId: string,
  page: { limit: number; offset: number },
) {
  const where = eq(serviceCredentials.app_id, appId);
  const { rows, total } = await pageOf(ctx.db, serviceCredentials, {
    where,
    order: [asc(serviceCredentials.id)],
    page,
  });
  return { data: rows.map(view), total };
}

async function findCredential(db: Database, appId: string, id: string) {
  const [row] = await db
    .select()
    .from(serviceCredentials)
    .where(and(eq(serviceCredentials.app_id, appId), eq(serviceCredentials.id, id)));
  if (!row) throw new ApiError("not_found", "No such service credential in this app");
  return row;
}

/** Creates a credential; `client_secret` is in the answer only. */
export async function createCredential(
  ctx: ServiceContext,
  app: AppRecord,
  input: { name: string; permissions: string[] },
) {
  assertMayGrant(ctx.grantor, input.permissions, "json.permissions");
  const secret = randomSecret("sk_live_");
  const secretHash = await sha256Hex(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [inserted] = await tx
        .insert(serviceCredentials)
        .values({
          id: newId("cred"),
          app_id: app.id,
          name: input.name,
          client_id: randomSecret("svc_", 16),
          secret_hash: secretHash,
          permissions: [...new Set(input.permissions)],
          created_at: now,
          updated_at: now,
        })
        .returning();
      if (!inserted) throw new Error("insert returned no row");
      return inserted;
    },
    (inserted) => ({
      appId: app.id,
      action: "credential.created",
      target: credentialTarget(inserted.id),
      metadata: { name: input.name, permissions: input.permissions },
    }),
  );
  return { ...view(row), client_secret: secret };
}

/** Renames, changes permissions, or rotates the secret (the old one works for the grace period). */
export async function updateCredential(
  ctx: ServiceContext,
  app: AppRecord,
  id: string,
  changes: {
    name?: string | undefined;
    permissions?: string[] | undefined;
    rotate_secret?: boolean | undefined;
    grace_period_seconds?: number | undefined;
  },
) {
  const current = await findCredential(ctx.db, app.id, id);
  if (current.revoked_at) throw new ApiError("conflict", "The credential is revoked");
  if (changes.permissions) assertMayGrant(ctx.grantor, changes.permissions, "json.permissions");
  const secret = changes.rotate_secret ? randomSecret("sk_live_") : undefined;
  const secretHash = secret ? await sha256Hex(secret) : undefined;
  const grace = changes.grace_period_seconds ?? DEFAULT_GRACE_SECONDS;
  const { credential: row } = await changeCredential(
    ctx,
    current,
    (now) => ({
      ...(changes.name !== undefined ? { name: changes.name } : {}),
      ...(changes.permissions ? { permissions: [...new Set(changes.permissions)] } : {}),
      ...(secretHash
        ? {
            secret_hash: secretHash,
            previous_secret_hash: current.secret_hash,
            previous_secret_expires_at: new Date(now.getTime() + grace * 1000),
          }
        : {}),
    }),
    {
      appId: app.id,
      action: secret ? "credential.rotated" : "credential.updated",
      target: credentialTarget(id),
      metadata: { fields: Object.keys(changes) },
    },
  );
  return { ...view(row), ...(secret ? { client_secret: secret } : {}) };
}

/** Revokes a credential: no more tokens, and the live ones stop working at once. */
export async function revokeCredential(ctx: ServiceContext, app: AppRecord, id: string) {
  const current = await findCredential(ctx.db, app.id, id);
  if (current.revoked_at) return view(current);
  const { credential: row, at: revokedAt } = await changeCredential(
    ctx,
    current,
    (now) => ({ revoked_at: now, previous_secret_hash: null }),
    { appId: app.id, action: "credential.revoked", target: credentialTarget(id) },
  );
  await ctx.revocations.revokeIssuedBefore(`sub:${id}`, revokedAt, revocationHorizon(revokedAt));
  return view(row);
}

/**
 * `grant_type=client_credentials` (RFC 6749 §4.4): the client authenticates with its id and
 * secret (or the previous secret during its grace period); `scope` may narrow the permissions.
 * No refresh token: the client can always ask again.
 */
export async function clientCredentialsGrant(
  ctx: ServiceContext,
  app: AppRecord,
  input: { clientId: string; clientSecret: string; scope?: string | undefined; issuer: string },
) {
  assertAppActive(app, "invalid_grant");
  const now = ctx.clock.now();
  const credential = await ctx.credentialsByClientId.get(input.clientId, async () => {
    const [row] = await ctx.db
      .select()
      .from(serviceCredentials)
      .where(eq(serviceCredentials.client_id, input.clientId))
      .limit(1);
    return row;
  });
  const matches = credential
    ? await matchesRotatedSecret(input.clientSecret, credential, now)
    : false;
  if (!credential || credential.app_id !== app.id || credential.revoked_at || !matches) {
    await recordAudit(
      ctx,
      {
        appId: app.id,
        action: "auth.client.failed",
        actor: { type: "anonymous", id: null },
        metadata: { client_id: input.clientId.slice(0, 64) },
      },
      now,
    );
    throw new ApiError("invalid_client", "Client authentication failed", {
      headers: { "WWW-Authenticate": `Basic realm="heimdall"` },
    });
  }

  const requested = input.scope?.split(" ").filter(Boolean);
  const notGranted = requested?.filter((scope) => !hasPermission(credential.permissions, scope));
  if (notGranted && notGranted.length > 0) {
    throw new ApiError("invalid_scope", `Not granted to this client: ${notGranted.join(" ")}`);
  }
  const permissions = requested && requested.length > 0 ? requested : credential.permissions;
  const settings = settingsOf(app);
  const { token } = await signAccessToken(ctx, {
    issuer: input.issuer,
    app: { id: app.id, name: app.name, alg: settings.signing_algorithm },
    subject: credential.id,
    roles: [],
    permissions,
    ttlSeconds: settings.access_token_ttl,
    clientId: credential.client_id,
  });
  ctx.credentialUsage.record(credential.id, now);
  await recordAudit(
    ctx,
    {
      appId: app.id,
      action: "auth.client.succeeded",
      actor: { type: "service", id: credential.id },
      metadata: { previous_secret: matches === "previous", scope: permissions },
    },
    now,
  );
  return {
    access_token: token,
    token_type: "Bearer" as const,
    expires_in: settings.access_token_ttl,
    scope: permissions.join(" "),
  };
}
