import type { SQL } from "drizzle-orm";
import type { PgTable } from "drizzle-orm/pg-core";
import type { Database } from "../ports";

/**
 * One page of a table's rows, in `order`, and how many rows `where` matches in all: the two
 * queries of every list endpoint, run together.
 */
export async function pageOf<T extends PgTable>(
  db: Database,
  table: T,
  options: {
    where: SQL | undefined;
    order: SQL[];
    page: { limit: number; offset: number };
  },
): Promise<{ rows: T["$inferSelect"][]; total: number }> {
  const [rows, total] = await Promise.all([
    db
      .select()
      .from(table as PgTable)
      .where(options.where)
      .orderBy(...options.order)
      .limit(options.page.limit)
      .offset(options.page.offset),
    db.$count(table, options.where),
  ]);
  return { rows: rows as T["$inferSelect"][], total };
}
