import { type SQL, sql } from "drizzle-orm";
import fc from "fast-check";
import { expect } from "vitest";
import { ErrorSchema } from "../../src/http/openapi";
import { errorStatus } from "../../src/lib/errors";
import type { DatabasePort } from "../../src/ports";
import type { LogEvent } from "./app";

/**
 * What the bad-input fuzzes share (test/hardening/fuzz.test.ts over the OpenAPI document,
 * outside-openapi.test.ts over the routes outside it): the hostile values, the check of an
 * answer, and the watch that proves a rejected request wrote nothing.
 */

// ---------------------------------------------------------------------------------------------
// Hostile values.

/** A long string, built when sent (and printed short in a counterexample). */
export class Big {
  constructor(
    readonly unit: string,
    readonly times: number,
  ) {}
  [fc.toStringMethod]() {
    return `big(${JSON.stringify(this.unit)}×${this.times})`;
  }
}

/** The long string itself. */
export const bigText = (big: Big) => big.unit.repeat(big.times);

/** Strings no input should choke on. */
export const hostileStrings: Array<string | Big> = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "%00",
  "😀",
  "👨‍👩‍👧‍👦",
  "\ud800",
  "x\udfffy",
  "\u202eevil",
  "\ufeff",
  "a\r\nSet-Cookie: x=1",
  "' OR 1=1--",
  "'; DROP TABLE users;--",
  '" OR ""="',
  "1); SELECT pg_sleep(5);--",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, not a template
  "${{7*7}}",
  "{{7*7}}",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, not a template
  "${7*7}",
  "<%= 7*7 %>",
  "<script>alert(1)</script>",
  "../../etc/passwd",
  "..%2f..%2fetc%2fpasswd",
  "..\\..\\windows\\win.ini",
  "%ff",
  "%",
  "null",
  "true",
  "-1",
  "1e309",
  "NaN",
  "99999999999999999999999",
  "-0",
  "__proto__",
  "constructor",
  '{"$gt":""}',
  "usr_00000000000000000000000000",
  "dk_nothing",
  "pk_nothing",
  "a.b.c",
  "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
  "javascript:alert(1)",
  "http://169.254.169.254/latest/meta-data/",
  "file:///etc/passwd",
  "a@b",
  "@",
  new Big("a", 100_000),
  new Big("😀", 30_000),
  new Big("%", 5_000),
  new Big("../", 2_000),
];

/** Characters that break naive handling, spliced into ordinary text. */
const specialChars = [
  "\u0000",
  "\ud800",
  "\udfff",
  "\u202e",
  "\ufeff",
  "😀",
  "\r\n",
  "'",
  '"',
  "\\",
  "%",
];
export const spiced = fc
  .tuple(fc.string({ maxLength: 6 }), fc.constantFrom(...specialChars), fc.string({ maxLength: 6 }))
  .map(([before, special, after]) => before + special + after);

export const hostileString = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...hostileStrings) },
  { weight: 3, arbitrary: spiced },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 10 }) },
);

/** Header-safe garbage for the Authorization header. */
export const garbageToken = fc.oneof(
  fc.string({
    unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_.~+/="),
    minLength: 1,
  }),
  fc.constantFrom(
    "' OR 1=1--",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, not a template
    "${{7*7}}",
    "../../etc/passwd",
    "%00",
    "x".repeat(10_000),
  ),
);

/** `encodeURIComponent` after replacing lone surrogates (which it refuses) with U+FFFD. */
export const encode = (text: string) => encodeURIComponent(Buffer.from(text).toString());

/** An answer as the fuzz requires it: < 500, nothing logged as an error, 4xx in the shape. */
export function expectAnswer(res: Response, text: string, logs: LogEvent[], request: string) {
  const what = `${request} → ${res.status} ${text.slice(0, 300)}`;
  expect(res.status, what).toBeLessThan(500);
  const errors = logs.filter((event) => event.level === "error").map((event) => event.message);
  expect(errors, `logged an error: ${what}`).toEqual([]);
  if (res.status < 400) return;
  expect(res.headers.get("content-type"), what).toMatch(/^application\/json/);
  const body = ErrorSchema.strict().safeParse(JSON.parse(text));
  expect(body.success, `not in the error shape: ${what}`).toBe(true);
  const error = body.data!.error;
  expect(errorStatus[error.code], `a code of another status: ${what}`).toBe(res.status);
  expect(error.message.length, what).toBeGreaterThan(0);
  expect(error.request_id, what).toBe(res.headers.get("x-request-id"));
}

// ---------------------------------------------------------------------------------------------
// What a rejected request must not have written.

/**
 * Audit events that record a refusal itself (a failed sign-in, a lockout, a failed client
 * authentication or second factor, a reused authorization code, a wrong mailed sign-in code): a 4xx may insert these, and
 * only these. Every other row of `audit_logs`, and every other table, must stay as it was.
 */
const refusalActions = [
  "auth.login.failed",
  "auth.lockout",
  "auth.client.failed",
  "auth.mfa.failed",
  "auth.login.mfa_required",
  "oauth.code_reused",
  "otp.failed",
];
const REFUSALS = "audit_logs (refusals)";
/**
 * A reused refresh token is refused and ends its whole session: with its
 * `token.reuse_detected` event, and only then, a 4xx may also change these two tables.
 */
const REUSE = "audit_logs (token.reuse_detected)";
const endedByReuse = ["sessions", "refresh_tokens"];

export interface Snapshot {
  /** The next transaction id Postgres will assign. */
  xid: bigint;
  /** Rows per table; `audit_logs` split into refusals and everything else. */
  rows: Record<string, number>;
}

/**
 * What a request wrote, exactly and cheaply. Every transaction that inserts, updates or deletes
 * gets a transaction id, so when the next id has not moved, nothing at all was written (one tiny
 * query). When it moved, the rows of every table are counted (catching inserts and deletes),
 * and the rows whose `xmin` is one of the new ids are counted per table: those a transaction of
 * the request inserted or updated and committed (rolled-back rows are invisible). On a shared
 * Postgres server other databases move the id too; that costs the counts, never a false alarm.
 */
export async function writeWatch(db: DatabasePort) {
  const conn = db.session().db;
  const rowsOf = async <T>(query: SQL) =>
    (
      (await conn.execute(query)) as unknown as {
        rows: T[];
      }
    ).rows;
  const tables = (
    await rowsOf<{ tablename: string }>(
      sql`select tablename from pg_tables where schemaname = 'public' order by tablename`,
    )
  ).map((row) => row.tablename);
  expect(tables.length).toBeGreaterThan(20);
  expect(tables).toContain("audit_logs");
  const refusals = refusalActions.map((action) => `'${action}'`).join(", ");
  const audit = (where: string, name: string) =>
    `(select count(*) from audit_logs where ${where})::int as "${name}"`;
  /** One select of `count(*) … where <where>` per table, audit_logs split three ways. */
  const perTable = (where: string) =>
    sql.raw(
      `select ${tables
        .flatMap((table) =>
          table === "audit_logs"
            ? [
                audit(
                  `${where} and action not in (${refusals}, 'token.reuse_detected')`,
                  "audit_logs",
                ),
                audit(`${where} and action in (${refusals})`, REFUSALS),
                audit(`${where} and action = 'token.reuse_detected'`, REUSE),
              ]
            : [`(select count(*) from "${table}" where ${where})::int as "${table}"`],
        )
        .join(", ")}`,
    );
  const counting = perTable("true");
  const nextXid = async () =>
    BigInt(
      (
        await rowsOf<{ xid: string }>(
          sql`select pg_snapshot_xmax(pg_current_snapshot())::text as xid`,
        )
      )[0]!.xid,
    );
  const count = async () => (await rowsOf<Record<string, number>>(counting))[0]!;
  /** Rows per table inserted or updated by the transactions in [from, to) (32-bit `xmin`). */
  const touched = async (from: bigint, to: bigint) => {
    const [lo, hi] = [from % 2n ** 32n, to % 2n ** 32n];
    const xmin = "(xmin::text::bigint)";
    const where =
      lo <= hi ? `${xmin} >= ${lo} and ${xmin} < ${hi}` : `(${xmin} >= ${lo} or ${xmin} < ${hi})`;
    return (await rowsOf<Record<string, number>>(perTable(where)))[0]!;
  };

  return {
    async snapshot(): Promise<Snapshot> {
      return { xid: await nextXid(), rows: await count() };
    },
    /**
     * The snapshot after a request, what it wrote beyond what a refusal may write, and whether
     * it recorded a refusal.
     */
    async after(
      before: Snapshot,
    ): Promise<{ snapshot: Snapshot; written: string[]; refused: boolean; counted: boolean }> {
      const xid = await nextXid();
      if (xid === before.xid) {
        return { snapshot: before, written: [], refused: false, counted: false };
      }
      const rows = await count();
      const changed = await touched(before.xid, xid);
      const reused = (changed[REUSE] ?? 0) > 0;
      const refused = reused || (changed[REFUSALS] ?? 0) > 0;
      const written = Object.keys(rows).flatMap((table) => {
        if (table === REFUSALS || table === REUSE) return [];
        if (reused && endedByReuse.includes(table)) return [];
        return [
          ...(rows[table] !== before.rows[table]
            ? [`${table}: ${before.rows[table]} → ${rows[table]} rows`]
            : []),
          ...(changed[table] ? [`${table}: ${changed[table]} rows inserted or updated`] : []),
        ];
      });
      return { snapshot: { xid, rows }, written, refused, counted: true };
    },
  };
}
