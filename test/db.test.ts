import { eq, sql } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNeonProxy } from "../scripts/neon-proxy";
import { createNeonDatabase } from "../src/adapters/neon/database";
import { migrateNeon } from "../src/adapters/neon/migrate";
import { createPostgresDatabase } from "../src/adapters/postgres/database";
import { preparedPerDatabase } from "../src/db/prepared";
import { apps } from "../src/db/schema";
import { newId } from "../src/lib/ids";
import { PgBinaryArray } from "../src/lib/pg-binary-array";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, migrationsFolder } from "./support/app";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";
import { until } from "./support/wait";

interface Driver {
  name: string;
  /** Opens the port on a fresh, migrated database; `dispose` tears everything down. */
  open(): Promise<{ port: DatabasePort; dispose(): Promise<void> }>;
}

const drivers: Driver[] = [
  {
    name: "PGlite (embedded)",
    async open() {
      const port = await createMemoryDatabase();
      return { port, dispose: () => port.close() };
    },
  },
];

if (services.postgres) {
  const serverUrl = services.postgres;
  drivers.push(
    {
      name: "Postgres (node-postgres)",
      async open() {
        const database = await createTestDatabase(serverUrl);
        const port = await createPostgresDatabase({ url: database.url, migrationsFolder });
        return {
          port,
          dispose: async () => {
            await port.close();
            await database.drop();
          },
        };
      },
    },
    {
      name: "Postgres through the Neon serverless driver",
      async open() {
        const database = await createTestDatabase(serverUrl);
        const proxy = await startNeonProxy();
        await migrateNeon({ url: database.url, wsProxy: proxy.url, migrationsFolder });
        const port = createNeonDatabase({ url: database.url, wsProxy: proxy.url });
        return {
          port,
          dispose: async () => {
            await port.close();
            await proxy.close();
            await database.drop();
          },
        };
      },
    },
  );
} else {
  announceSkip("database suite on real Postgres and through the Neon driver", "TEST_DATABASE_URL");
}

describe.each(drivers)("database port: $name", (driver) => {
  let port: DatabasePort;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    ({ port, dispose } = await driver.open());
  });
  afterAll(() => dispose());

  /** Runs `work` in a session and releases it, as a request would. */
  async function withSession<T>(
    work: (db: ReturnType<DatabasePort["session"]>["db"]) => Promise<T>,
  ) {
    const session = port.session();
    try {
      return await work(session.db);
    } finally {
      await session.release();
    }
  }

  it("has every migration applied", async () => {
    const journal = (await import("../drizzle/meta/_journal.json", { with: { type: "json" } }))
      .default;
    const applied = await withSession((db) =>
      db.execute<{ count: number }>(
        sql`select count(*)::int as count from drizzle.__drizzle_migrations`,
      ),
    );
    expect((applied as unknown as { rows: unknown[] }).rows[0]).toEqual({
      count: journal.entries.length,
    });
  });

  it("reads float8 and timestamptz arrays in binary form (array_send), times as their text gives them", async () => {
    const result = await withSession((db) =>
      db.execute(sql`
        with t(at) as (values (timestamptz '2025-11-20T10:00:00.123456Z'),
          ('1999-12-31T23:59:59.999Z'), ('1969-12-31T23:59:59.9995Z'), ('2100-03-01T00:00:00Z'))
        select array_send(array_agg(at)) as sent, array_agg(at::text) as texts,
          array_send(array[1.5, null, -0.1, 52.51234567891234]::float8[]) as floats,
          array_send('{}'::float8[]) as empty
        from t`),
    );
    const [row] = (
      result as unknown as {
        rows: Array<{ sent: Uint8Array; texts: string[]; floats: Uint8Array; empty: Uint8Array }>;
      }
    ).rows;
    if (!row) throw new Error("no row");
    const { sent, texts, floats, empty } = row;
    const times = new PgBinaryArray(sent);
    const millis = Array.from({ length: times.length }, (_, i) => times.epochMilliseconds(i));
    expect(millis.map((ms) => new Date(ms as number).toISOString())).toEqual([
      "2025-11-20T10:00:00.123Z",
      "1999-12-31T23:59:59.999Z",
      "1969-12-31T23:59:59.999Z",
      "2100-03-01T00:00:00.000Z",
    ]);
    expect(millis).toEqual(texts.map((text) => new Date(text).getTime()));
    const values = new PgBinaryArray(floats);
    expect(Array.from({ length: values.length }, (_, i) => values.float8(i))).toEqual([
      1.5,
      null,
      -0.1,
      52.51234567891234,
    ]);
    expect(Array.from(values.float8s())).toEqual([1.5, Number.NaN, -0.1, 52.51234567891234]);
    expect(new PgBinaryArray(empty).length).toBe(0);
  });

  it("stores and reads back an app with its defaults, jsonb and timestamps", async () => {
    const id = newId("app");
    await withSession((db) =>
      db.insert(apps).values({
        id,
        name: `acme-${id}`,
        display_name: "Acme Corporation",
        metadata: { plan: "growth", region: "us-east-1", nested: { ok: true } },
      }),
    );
    const [row] = await withSession((db) => db.select().from(apps).where(eq(apps.id, id)));
    expect(row).toMatchObject({
      id,
      display_name: "Acme Corporation",
      status: "active",
      metadata: { plan: "growth", region: "us-east-1", nested: { ok: true } },
    });
    expect(row?.created_at).toBeInstanceOf(Date);
    expect(Math.abs(Date.now() - (row?.created_at.getTime() ?? 0))).toBeLessThan(60_000);
  });

  it("builds a prepared statement once for every session, and on its own inside a transaction", async () => {
    let builds = 0;
    const appName = preparedPerDatabase((db) => {
      builds++;
      return db
        .select({ name: apps.name })
        .from(apps)
        .where(eq(apps.id, sql.placeholder("id")))
        .prepare("app_name_by_id");
    });
    const id = newId("app");
    await withSession((db) =>
      db.insert(apps).values({ id, name: `prepared-${id}`, display_name: "Prepared" }),
    );
    for (let i = 0; i < 3; i++) {
      expect(await withSession((db) => appName(db).execute({ id }))).toEqual([
        { name: `prepared-${id}` },
      ]);
    }
    expect(builds).toBe(1);
    const inTransaction = await withSession((db) =>
      db.transaction((tx) => appName(tx).execute({ id })),
    );
    expect(inTransaction).toEqual([{ name: `prepared-${id}` }]);
    expect(builds).toBe(2);
  });

  it("refuses a second app whose name differs only in case", async () => {
    const name = `Unique-${newId("app")}`;
    await withSession((db) =>
      db.insert(apps).values({ id: newId("app"), name, display_name: "One" }),
    );
    const duplicate = withSession((db) =>
      db.insert(apps).values({ id: newId("app"), name: name.toLowerCase(), display_name: "Two" }),
    );
    await expect(duplicate).rejects.toMatchObject({ cause: { code: "23505" } });
  });

  it("rolls a failed transaction back completely", async () => {
    const id = newId("app");
    const failing = withSession((db) =>
      db.transaction(async (tx) => {
        await tx.insert(apps).values({ id, name: `tx-${id}`, display_name: "Half" });
        throw new Error("abort");
      }),
    );
    await expect(failing).rejects.toThrow("abort");
    const rows = await withSession((db) => db.select().from(apps).where(eq(apps.id, id)));
    expect(rows).toEqual([]);
  });
});

describe.runIf(Boolean(services.postgres))("node-postgres adapter", () => {
  it("survives the server dropping its idle connections, and reports it", async () => {
    const serverUrl = services.postgres ?? "";
    const database = await createTestDatabase(serverUrl);
    const lost: Error[] = [];
    const port = await createPostgresDatabase({
      url: database.url,
      migrationsFolder,
      onIdleError: (error) => lost.push(error),
    });
    try {
      const db = port.session().db;
      await Promise.all([db.execute(sql`select 1`), db.execute(sql`select 2`)]);
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      const terminated = await admin.query(
        "select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
        [new URL(database.url).pathname.slice(1)],
      );
      await admin.end();
      // Every idle connection reports its loss on its own: the next query must not start before
      // the last has, or the pool may still hand it out.
      const dropped = terminated.rows.filter((row) => row.ended === true).length;
      expect(dropped).toBeGreaterThan(0);
      await until(() => lost.length >= dropped, { message: "every idle connection's error" });
      const result = await db.execute(sql`select 1 as ok`);
      expect((result as unknown as { rows: unknown[] }).rows).toEqual([{ ok: 1 }]);
    } finally {
      await port.close();
      await database.drop();
    }
  });
});
