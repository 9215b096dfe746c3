import { and, desc, eq, gt, isNull, or } from "drizzle-orm";
import ipaddr from "ipaddr.js";
import { pageOf } from "../db/page";
import { bans, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Clock, Database, Logger, RevocationStore } from "../ports";
import { audited, type ServiceContext } from "./audit";
import { revokeUserTokens } from "./users";

export type BanRecord = typeof bans.$inferSelect;

const IP_BANS_TTL_MS = 30_000;

/** Active: not lifted, not expired. */
const activeAt = (now: Date) =>
  and(isNull(bans.lifted_at), or(isNull(bans.expires_at), gt(bans.expires_at, now)));

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

/**
 * The active IP bans, cached per isolate for 30 s (refreshed at once where a ban is made), so
 * checking every request's address costs no database read. If the list cannot be loaded, the
 * last one known stays in force and loading is retried after 5 s: a database outage must not turn
 * every request into an error (health checks included).
 */
export function createIpBanList(deps: { clock: Clock; logger: Logger }) {
  type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];
  let ranges: Range[] = [];
  let nextLoadAt = 0;

  async function refresh(db: () => Database, now: Date) {
    try {
      const rows = await db()
        .select({ cidr: bans.cidr })
        .from(bans)
        .where(and(eq(bans.kind, "ip"), activeAt(now)));
      ranges = rows.flatMap((row) => (row.cidr ? [ipaddr.parseCIDR(row.cidr)] : []));
      nextLoadAt = now.getTime() + IP_BANS_TTL_MS;
    } catch (error) {
      deps.logger.error("ip ban list unavailable; keeping the last one", { error });
      nextLoadAt = now.getTime() + 5_000;
    }
  }

  return {
    async isBanned(db: () => Database, ip: string): Promise<boolean> {
      const now = deps.clock.now();
      if (now.getTime() >= nextLoadAt) await refresh(db, now);
      if (ranges.length === 0) return false;
      let address: ipaddr.IPv4 | ipaddr.IPv6;
      try {
        address = ipaddr.process(ip);
      } catch {
        return false;
      }
      return ranges.some(
        ([range, bits]) => range.kind() === address.kind() && address.match(range as never, bits),
      );
    },
    invalidate() {
      nextLoadAt = 0;
    },
  };
}

export type IpBanList = ReturnType<typeof createIpBanList>;

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
  deps: { revocations: RevocationStore; ipBans: IpBanList },
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
    await revokeUserTokens(ctx.db, deps.revocations, user.id, ctx.clock.now(), "banned");
  } else {
    deps.ipBans.invalidate();
  }
  return ban;
}

export async function listBans(
  db: Database,
  now: Date,
  filter: { active?: boolean | undefined; kind?: "user" | "ip" | undefined },
  page: { limit: number; offset: number },
) {
  const conditions = [
    ...(filter.active ? [activeAt(now)] : []),
    ...(filter.kind ? [eq(bans.kind, filter.kind)] : []),
  ];
  const where = conditions.length > 0 ? and(...conditions) : undefined;
  const { rows, total } = await pageOf(db, bans, { where, order: [desc(bans.created_at)], page });
  return { data: rows, total };
}

export async function findBan(db: Database, id: string) {
  const [row] = await db.select().from(bans).where(eq(bans.id, id));
  if (!row) throw new ApiError("not_found", "No such ban");
  return row;
}

/** Lifts a ban; tokens revoked by it stay revoked, new sign-ins work again. */
export async function liftBan(ctx: ServiceContext, ipBans: IpBanList, id: string) {
  const ban = await findBan(ctx.db, id);
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
  ipBans.invalidate();
  return lifted;
}
