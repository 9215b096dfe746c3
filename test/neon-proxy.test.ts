import { type NeonDbError, neon, neonConfig } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNeonProxy } from "../scripts/neon-proxy";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";

/**
 * scripts/neon-proxy.ts's SQL over HTTP, spoken to by Neon's own `neon()` client: what it answers
 * must parse as Neon's endpoint's answers do.
 */
describe.runIf(Boolean(services.postgres))("the Neon proxy's SQL over HTTP", () => {
  let proxy: Awaited<ReturnType<typeof startNeonProxy>>;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let sql: ReturnType<typeof neon<false, false>>;

  beforeAll(async () => {
    database = await createTestDatabase(services.postgres ?? "");
    proxy = await startNeonProxy();
    neonConfig.fetchEndpoint = `http://${new URL(proxy.url).host}/sql`;
    sql = neon(database.url);
    await sql`create table notes (id int primary key, body text not null, at timestamptz, data bytea)`;
  });

  afterAll(async () => {
    await proxy?.close();
    await database?.drop();
  });

  it("answers a statement with its parameters, each value parsed by its type", async () => {
    const at = new Date("2025-01-02T03:04:05.678Z");
    const [row] = await sql.query(
      "insert into notes values ($1, $2, $3, $4) returning *, array[1, 2] as list, null::text as nothing",
      [1, "first", at, Buffer.from([1, 2, 255])],
    );
    expect(row).toEqual({
      id: 1,
      body: "first",
      at,
      data: Buffer.from([1, 2, 255]),
      list: [1, 2],
      nothing: null,
    });
    const full = await sql.query("select body from notes where id = $1", [1], {
      fullResults: true,
      arrayMode: true,
    });
    expect(full).toMatchObject({ command: "SELECT", rowCount: 1, rows: [["first"]] });
    expect(full.fields[0]).toMatchObject({ name: "body", dataTypeID: 25 });
  });

  it("reports a Postgres error with its SQLSTATE and fields", async () => {
    const error = (await sql`insert into notes values (1, 'again')`.catch(
      (thrown: unknown) => thrown,
    )) as NeonDbError;
    expect(error.name).toBe("NeonDbError");
    expect(error.code).toBe("23505");
    expect(error.constraint).toBe("notes_pkey");
  });

  it("runs a batch in one transaction: all of it, or none when a statement fails", async () => {
    const [inserted, counted] = await sql.transaction([
      sql`insert into notes (id, body) values (2, 'second')`,
      sql`select count(*)::int as n from notes`,
    ]);
    expect(inserted).toEqual([]);
    expect(counted).toEqual([{ n: 2 }]);

    const failed = await sql
      .transaction([sql`insert into notes (id, body) values (3, 'third')`, sql`select 1 / 0`], {
        isolationLevel: "Serializable",
        readOnly: false,
      })
      .catch((thrown: unknown) => thrown);
    expect((failed as NeonDbError).code).toBe("22012");
    expect(await sql`select id from notes where id = 3`).toEqual([]);

    const readOnly = await sql
      .transaction([sql`insert into notes (id, body) values (4, 'fourth')`], { readOnly: true })
      .catch((thrown: unknown) => thrown);
    expect((readOnly as NeonDbError).code).toBe("25006");
  });

  it("refuses a connection string that is not on loopback", async () => {
    const elsewhere = new URL(database.url);
    elsewhere.hostname = "192.0.2.1";
    const error = (await neon(elsewhere.toString())`select 1`.catch(
      (thrown: unknown) => thrown,
    )) as NeonDbError;
    expect(error.message).toBe("only loopback addresses");
  });
});

if (!services.postgres) announceSkip("the Neon proxy's SQL over HTTP", "TEST_DATABASE_URL");
