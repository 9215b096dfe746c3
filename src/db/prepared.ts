import type { Database } from "../ports";

/**
 * A statement built once per database handle instead of on every call, for hot paths where
 * drizzle's building costs more than the query. Build it with `.prepare(name)` and
 * `sql.placeholder`: drivers that can (node-postgres) then have the server parse and plan it once
 * per connection.
 *
 * @example
 * const byHash = preparedPerDatabase((db) =>
 *   db.select().from(tokens).where(eq(tokens.hash, sql.placeholder("hash"))).prepare("token_by_hash"),
 * );
 * const [row] = await byHash(ctx.db).execute({ hash });
 */
export function preparedPerDatabase<T>(build: (db: Database) => T): (db: Database) => T {
  const built = new WeakMap<object, T>();
  return (db) => {
    const key = (db as SharingStatements)[statementsShared] ?? db;
    let statement = built.get(key);
    if (!statement) {
      statement = build(db);
      built.set(key, statement);
    }
    return statement;
  };
}

/**
 * Set by an adapter on per-request handles whose statements all run on one client that outlives
 * them (Neon's SQL over HTTP): the value is that client, and a statement prepared on one handle
 * is reused by the others instead of being built again for every request.
 */
export const statementsShared = Symbol("statementsShared");

type SharingStatements = { [statementsShared]?: object };
