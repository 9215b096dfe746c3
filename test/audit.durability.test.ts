import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { readJson } from "./support/http";
import { startNodeServer } from "./support/node-server";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";

const ADMIN_KEY = "hk_admin_audit_durability_0123456789ab";
const admin = { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json" };

/** Where the process keeps its data, and how to read its audit rows once it is gone. */
interface Store {
  env: Record<string, string>;
  auditRows(): Promise<Array<{ action: string; user_agent: string | null }>>;
  dispose(): Promise<void>;
}

const stores: Array<{ name: string; open(): Promise<Store> }> = [
  {
    name: "PGlite on disk",
    async open() {
      const dataDir = await mkdtemp(join(tmpdir(), "heimdall-audit-"));
      return {
        env: { DATA_DIR: dataDir },
        async auditRows() {
          const client = await PGlite.create(join(dataDir, "pglite"));
          try {
            const result = await client.query<{ action: string; user_agent: string | null }>(
              "SELECT action, user_agent FROM audit_logs",
            );
            return result.rows;
          } finally {
            await client.close();
          }
        },
        dispose: () => rm(dataDir, { recursive: true, force: true }),
      };
    },
  },
];
if (services.postgres) {
  const serverUrl = services.postgres;
  stores.push({
    name: "Postgres",
    async open() {
      const database = await createTestDatabase(serverUrl);
      return {
        env: { DATABASE_URL: database.url },
        async auditRows() {
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          try {
            return (await client.query("SELECT action, user_agent FROM audit_logs")).rows;
          } finally {
            await client.end();
          }
        },
        dispose: () => database.drop(),
      };
    },
  });
} else announceSkip("audit durability on real Postgres", "TEST_DATABASE_URL");

/**
 * An answered request's audit event is on disk: the answer waits for the group commit that holds
 * its row. The process is killed (SIGKILL, no shutdown) right after the last answer of many
 * concurrent token requests, and every answered request's row is then read from the database.
 */
describe.each(stores)(
  "audit events answered before a crash, on $name",
  { timeout: 180_000 },
  (store) => {
    let opened: Store | undefined;
    afterAll(async () => {
      await opened?.dispose();
    });

    it("are all stored after the process is killed", async () => {
      opened = await store.open();
      const server = await startNodeServer({
        ...opened.env,
        ADMIN_API_KEY: ADMIN_KEY,
        PASSWORD_HASH_MEMORY_KIB: "1024",
        PASSWORD_HASH_ITERATIONS: "1",
        RATE_LIMIT_ENABLED: "false",
      });
      let answered: Array<{ agent: string; action: string }>;
      try {
        const post = (path: string, body: unknown) =>
          fetch(`${server.url}${path}`, {
            method: "POST",
            headers: admin,
            body: JSON.stringify(body),
          });
        expect((await post("/v1/apps", { name: "crash", display_name: "Crash" })).status).toBe(201);
        const created = await post("/v1/apps/crash/credentials", {
          name: "worker",
          permissions: ["users:read"],
        });
        expect(created.status).toBe(201);
        const credential = (await readJson(created)).data as {
          client_id: string;
          client_secret: string;
        };

        // Each request names itself in its User-Agent, which its audit row records. Even ones
        // present the right secret (auth.client.succeeded), odd ones an unknown client
        // (auth.client.failed).
        const grant = async (i: number) => {
          const agent = `durability-${i}`;
          const good = i % 2 === 0;
          const res = await fetch(`${server.url}/v1/apps/crash/tokens`, {
            method: "POST",
            headers: { "Content-Type": "application/x-www-form-urlencoded", "User-Agent": agent },
            body: new URLSearchParams({
              grant_type: "client_credentials",
              client_id: good ? credential.client_id : `cid_unknown_${i}`,
              client_secret: good ? credential.client_secret : "sk_live_wrong",
            }),
          });
          await res.arrayBuffer();
          expect(res.status).toBe(good ? 200 : 401);
          return { agent, action: good ? "auth.client.succeeded" : "auth.client.failed" };
        };
        answered = await Promise.all(Array.from({ length: 60 }, (_, i) => grant(i)));
      } finally {
        await server.kill("SIGKILL");
      }

      const rows = await opened.auditRows();
      const stored = new Set(rows.map((row) => `${row.user_agent} ${row.action}`));
      const missing = answered.filter(({ agent, action }) => !stored.has(`${agent} ${action}`));
      expect(missing).toEqual([]);
      expect(answered).toHaveLength(60);
    });
  },
);
