import { and, asc, eq, gt, inArray, or, sql } from "drizzle-orm";
import { apiKeys, auditLogs, devices, emailOutbox, positions, sessions, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { ulid } from "../lib/ids";
import { serialize } from "../lib/serialize";
import type { AppRecord } from "./apps";
import { auditEvents, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { assertCurrentPassword } from "./current-password";
import { deviceView } from "./devices";
import { serializePosition } from "./ingest";
import { chronological } from "./positions";
import { findUser, revokeUserTokens } from "./users";

/** Rows read per query while exporting: memory stays bounded by this, not by the data. */
const EXPORT_PAGE = 2000;

/**
 * Everything Heimdall stores about a user (GDPR Art. 15 and 20), as one JSON document written
 * piece by piece: profile, sessions, API keys they made (metadata), audit events by or about
 * them, and the devices they registered with every position. `write` is awaited for each piece,
 * so a slow reader slows the export instead of filling memory.
 */
export async function exportUser(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  now: Date,
  write: (text: string) => Promise<void>,
) {
  const { db } = ctx;
  const user = await findUser(ctx, app.id, userId);
  const json = JSON.stringify;
  await write(`{"exported_at":${json(now.toISOString())},`);
  await write(`"app":${json({ id: app.id, name: app.name, display_name: app.display_name })},`);
  await write(`"user":${json(serialize(user))},`);

  const userSessions = await db
    .select()
    .from(sessions)
    .where(eq(sessions.user_id, userId))
    .orderBy(asc(sessions.created_at));
  await write(`"sessions":${json(userSessions.map(serialize))},`);

  const keys = await db
    .select({
      id: apiKeys.id,
      name: apiKeys.name,
      prefix: apiKeys.prefix,
      created_at: apiKeys.created_at,
      expires_at: apiKeys.expires_at,
      revoked_at: apiKeys.revoked_at,
      last_used_at: apiKeys.last_used_at,
    })
    .from(apiKeys)
    .where(and(eq(apiKeys.app_id, app.id), eq(apiKeys.created_by, userId)));
  await write(`"api_keys":${json(keys.map(serialize))},`);

  await write(`"audit_events":[`);
  let first = true;
  for await (const rows of auditEvents(ctx, { appId: app.id, involving: userId })) {
    await write(`${first ? "" : ","}\n${rows.map((row) => json(serialize(row))).join(",\n")}`);
    first = false;
  }
  await write("],");

  const owned = await db
    .select()
    .from(devices)
    .where(and(eq(devices.app_id, app.id), eq(devices.owner_id, userId)))
    .orderBy(asc(devices.id));
  await write(`"devices":[`);
  for (const [index, device] of owned.entries()) {
    const fields = json(serialize(deviceView(device)));
    await write(`${index === 0 ? "" : ","}\n${fields.slice(0, -1)},"positions":[`);
    let after: Date | undefined;
    let firstPage = true;
    for (;;) {
      // (device_id, timestamp) is unique: the timestamp alone is the keyset.
      const page = await db
        .select()
        .from(positions)
        .where(
          and(
            eq(positions.device_id, device.id),
            after ? gt(positions.timestamp, after) : undefined,
          ),
        )
        .orderBy(chronological)
        .limit(EXPORT_PAGE);
      if (page.length > 0) {
        const lines = page.map((row) => json(serializePosition(row))).join(",\n");
        await write(`${firstPage ? "" : ","}\n${lines}`);
        firstPage = false;
      }
      if (page.length < EXPORT_PAGE) break;
      after = page.at(-1)?.timestamp;
    }
    await write("]}");
  }
  await write("]}\n");
}

/**
 * Erasure (GDPR Art. 17): the user's profile, sessions, roles, 2FA, devices and positions are
 * deleted and their tokens revoked. The audit trail keeps its events, with the user replaced by
 * a pseudonym (the same for all their events, unlinkable to them) and their IP addresses, user
 * agents, locations and email removed. Needs the password: an access token alone cannot erase.
 */
export async function eraseUser(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  password: string,
) {
  const [user] = await ctx.db
    .select()
    .from(users)
    .where(and(eq(users.app_id, app.id), eq(users.id, userId)));
  if (!user) throw new ApiError("not_found", "No such user in this app");
  await assertCurrentPassword(ctx, app, user, password, {
    field: "json.password",
    during: "erasure",
    code: "forbidden",
  });
  const pseudonym = `usr_erased_${ulid()}`;
  const now = ctx.clock.now();
  const erased = await ctx.db.transaction(async (tx) => {
    // The one update the append-only trail allows, for this transaction only (migration 0006).
    await tx.execute(sql`select set_config('heimdall.erasure', 'on', true)`);
    const owned = tx
      .select({ id: devices.id })
      .from(devices)
      .where(and(eq(devices.app_id, app.id), eq(devices.owner_id, userId)));
    const points = await tx
      .delete(positions)
      .where(inArray(positions.device_id, owned))
      .returning({ id: positions.id });
    const removedDevices = await tx
      .delete(devices)
      .where(and(eq(devices.app_id, app.id), eq(devices.owner_id, userId)))
      .returning({ id: devices.id });
    const involving = or(eq(auditLogs.actor_id, userId), eq(auditLogs.target_id, userId));
    await tx
      .update(auditLogs)
      .set({
        actor_id: sql`case when ${auditLogs.actor_id} = ${userId}::text then ${pseudonym}::text else ${auditLogs.actor_id} end`,
        target_id: sql`case when ${auditLogs.target_id} = ${userId}::text then ${pseudonym}::text else ${auditLogs.target_id} end`,
        ip_address: null,
        user_agent: null,
        location: null,
        metadata: sql`${auditLogs.metadata} - 'email'`,
      })
      .where(and(eq(auditLogs.app_id, app.id), involving));
    // Failed sign-ins with their email, before or without an account match.
    await tx
      .update(auditLogs)
      .set({ metadata: sql`${auditLogs.metadata} - 'email'` })
      .where(
        and(
          eq(auditLogs.app_id, app.id),
          sql`lower(${auditLogs.metadata}->>'email') = lower(${user.email})`,
        ),
      );
    // Mail to the address (kept bodies hold it, and links for the account).
    await tx
      .delete(emailOutbox)
      .where(
        and(
          eq(emailOutbox.app_id, app.id),
          sql`lower(${emailOutbox.to_address}) = lower(${user.email})`,
        ),
      );
    await tx.update(apiKeys).set({ created_by: null }).where(eq(apiKeys.created_by, userId));
    // Sessions, refresh tokens, roles, recovery codes and mailed tokens go with the row (cascade).
    await tx.delete(users).where(eq(users.id, userId));
    return { positions: points.length, devices: removedDevices.length };
  });
  await revokeUserTokens(ctx, userId, now, "erased");
  await recordAudit(
    ctx,
    {
      appId: app.id,
      action: "user.erased",
      actor: { type: "user", id: pseudonym },
      target: { type: "user", id: pseudonym },
      metadata: erased,
    },
    now,
    { ...ctx.audit, actorId: pseudonym, ipAddress: null, userAgent: null, location: undefined },
  );
  return erased;
}
