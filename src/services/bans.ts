import { and, desc, eq } from "drizzle-orm";
import ipaddr from "ipaddr.js";
import { pageOf } from "../db/page";
import { bans, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { activeAt } from "./ip-ban-list";
import { revokeUserTokens } from "./users";

export type BanRecord = typeof bans.$inferSelect;

/** `203.0.113.7` → `203.0.113.7/32`; `2001:db8::/32` as given; anything else is a 400. */
export function normalizeCidr(value: string): string {
  try {
    if (value.includes("/")) {
      const [address, bits] = ipaddr.parseCIDR(value);
      return `${address.toString()}/${bits}`;
    }
    const address = ipaddr.process(value);
    return `${address.toString()}/${address.kind() === "ipv4" ? 32 : 128}`;
  } catch {
    throw new ApiError("validation_error", "Not an IP address or CIDR range", {
      details: [{ field: "json.ip", reason: "expected an IPv4/IPv6 address or CIDR range" }],
    });
  }
}

export async function isUserBanned(db: Database, userId: string, now: Date) {
  const [row] = await db
    .select({ id: bans.id })
    .from(bans)
    .where(and(eq(bans.kind, "user"), eq(bans.user_id, userId), activeAt(now)))
    .limit(1);
  return Boolean(row);
}

export async function createBan(
  ctx: ServiceContext,
  input: {
    user_id?: string | undefined;
    ip?: string | undefined;
    reason: string;
    expires_at?: string | undefined;
  },
) {
  const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
  let user: { id: string; app_id: string } | undefined;
  if (input.user_id) {
    [user] = await ctx.db
      .select({ id: users.id, app_id: users.app_id })
      .from(users)
      .where(eq(users.id, input.user_id));
    if (!user) throw new ApiError("not_found", "No such user");
  }
  const cidr = input.ip ? normalizeCidr(input.ip) : null;
  const ban = await audited(
    ctx,
    async (tx, now) => {
      const [row] = await tx
        .insert(bans)
        .values({
          id: newId("ban"),
          kind: user ? "user" : "ip",
          user_id: user?.id ?? null,
          app_id: user?.app_id ?? null,
          cidr,
          reason: input.reason,
          created_at: now,
          expires_at: expiresAt,
        })
        .returning();
      if (!row) throw new Error("insert returned no row");
      return row;
    },
    (row) => ({
      appId: row.app_id,
      action: "ban.created",
      target: row.user_id ? { type: "user", id: row.user_id } : { type: "ip", id: row.cidr ?? "" },
      metadata: {
        ban_id: row.id,
        reason: row.reason,
        expires_at: row.expires_at?.toISOString() ?? null,
      },
    }),
  );
  if (user) {
    await revokeUserTokens(ctx, user.id, ctx.clock.now(), "banned");
  } else {
    ctx.ipBans.invalidate();
  }
  return ban;
}

export async function listBans(
  ctx: ServiceContext,
  filter: { active?: boolean | undefined; kind?: "user" | "ip" | undefined },
  page: { limit: number; offset: number },
) {
  const conditions = [
    ...(filter.active ? [activeAt(ctx.clock.now())] : []),
    ...(filter.kind ? [eq(bans.kind, filter.kind)] : []),
  ];
  const where = conditions.length > 0 ? and(...conditions) : undefined;
  const { rows, total } = await pageOf(ctx.db, bans, {
    where,
    order: [desc(bans.created_at)],
    page,
  });
  return { data: rows, total };
}

export async function findBan(ctx: ServiceContext, id: string) {
  const [row] = await ctx.db.select().from(bans).where(eq(bans.id, id));
  if (!row) throw new ApiError("not_found", "No such ban");
  return row;
}

/** Lifts a ban; tokens revoked by it stay revoked, new sign-ins work again. */
export async function liftBan(ctx: ServiceContext, id: string) {
  const ban = await findBan(ctx, id);
  if (ban.lifted_at) return ban;
  const lifted = await audited(
    ctx,
    async (tx, now) => {
      const [row] = await tx
        .update(bans)
        .set({ lifted_at: now })
        .where(eq(bans.id, id))
        .returning();
      return row ?? ban;
    },
    { appId: ban.app_id, action: "ban.lifted", target: { type: "ban", id } },
  );
  ctx.ipBans.invalidate();
  return lifted;
}
