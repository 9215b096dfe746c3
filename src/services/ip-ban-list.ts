import { and, eq, gt, isNull, or, type Placeholder } from "drizzle-orm";
import ipaddr from "ipaddr.js";
import { bans } from "../db/schema";
import type { Clock, Database, Logger } from "../ports";

const IP_BANS_TTL_MS = 30_000;

/** Active: not lifted, not expired (`now` may be a prepared statement's placeholder). */
export const activeAt = (now: Date | Placeholder) =>
  and(isNull(bans.lifted_at), or(isNull(bans.expires_at), gt(bans.expires_at, now)));

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
