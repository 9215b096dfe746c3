import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase } from "../src/adapters/postgres/database";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { listAuditLogs } from "../src/routes/audit/audit.routes";
import { acceptInvite, createInvite, listInvites } from "../src/routes/invites/invites.routes";
import { getMe, listUsers } from "../src/routes/users/users.routes";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  migrationsFolder,
} from "./support/app";
import { expectError, readBody } from "./support/http";
import { bearer, createTenant, send } from "./support/identity";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";

const admin = { headers: adminHeaders };

interface Backend {
  name: string;
  open(): Promise<{ db: DatabasePort; dispose(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "PGlite",
    async open() {
      const db = await createMemoryDatabase();
      return { db, dispose: () => db.close() };
    },
  },
];
if (services.postgres) {
  const serverUrl = services.postgres;
  backends.push({
    name: "Postgres (concurrent connections)",
    async open() {
      const database = await createTestDatabase(serverUrl);
      const db = await createPostgresDatabase({ url: database.url, migrationsFolder });
      return {
        db,
        dispose: async () => {
          await db.close();
          await database.drop();
        },
      };
    },
  });
} else {
  announceSkip("invite race on real Postgres", "TEST_DATABASE_URL");
}

describe.each(backends)("invites on $name", (backend) => {
  let app: App;
  let dispose: () => Promise<void>;
  const clock = createTestClock();

  beforeAll(async () => {
    const opened = await backend.open();
    dispose = opened.dispose;
    ({ app } = createTestApp({ db: opened.db, clock }));
    await createTenant(app, "sierra");
  });
  afterAll(() => dispose());

  const invite = async (body: Record<string, unknown>) => {
    const res = await send(app, "POST", "/v1/apps/sierra/invites", { body, ...admin });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await readBody(res, createInvite, 201)).data;
  };
  const accept = (token: string, password = "correct horse battery") =>
    send(app, "POST", `/v1/invites/${token}/accept`, { body: { password, display_name: "Bob" } });

  it("creates the invited user with the invite's email and role, and signs them in", async () => {
    const created = await invite({
      email: "bob@contractor.io",
      role: "reader",
      expires_in_hours: 72,
    });
    expect(created).toMatchObject({
      email: "bob@contractor.io",
      role: "reader",
      max_uses: 1,
      uses: 0,
      revoked_at: null,
    });
    expect(created.id).toMatch(/^inv_/);
    expect(created.token).toMatch(/^inv_tok_/);
    expect(created.invite_url).toBe(`http://heimdall.test/v1/invites/${created.token}/accept`);
    expect(Date.parse(created.expires_at) - clock.now().getTime()).toBe(72 * 3_600_000);

    const pending = await readBody(
      await send(app, "GET", "/v1/apps/sierra/invites", admin),
      listInvites,
      200,
    );
    expect(pending.data.map((i: { id: string }) => i.id)).toContain(created.id);
    expect(JSON.stringify(pending)).not.toContain(created.token);

    const accepted = await accept(created.token);
    expect(accepted.status, await accepted.clone().text()).toBe(201);
    const body = await readBody(accepted, acceptInvite, 201);
    expect(body).toMatchObject({
      token_type: "Bearer",
      refresh_token: expect.stringMatching(/^rt_/),
      user: { email: "bob@contractor.io", display_name: "Bob", roles: ["reader"] },
    });
    const me = await readBody(
      await send(app, "GET", "/v1/users/me", { headers: bearer(body.access_token) }),
      getMe,
      200,
    );
    expect(me.data.id).toBe(body.user.id);

    await expectError(await accept(created.token), 404, "not_found");
    const after = await readBody(
      await send(app, "GET", "/v1/apps/sierra/invites", admin),
      listInvites,
      200,
    );
    expect(after.data.map((i: { id: string }) => i.id)).not.toContain(created.id);
    const audit = await readBody(
      await send(app, "GET", `/v1/apps/sierra/audit-logs?target_id=${created.id}`, admin),
      listAuditLogs,
      200,
    );
    expect(audit.data.map((e: { action: string }) => e.action).sort()).toEqual([
      "invite.accepted",
      "invite.created",
    ]);
  });

  it("lets exactly one of many simultaneous accepts of a single-use invite through", async () => {
    const created = await invite({ email: "race@contractor.io", role: "reader" });
    const results = await Promise.all(Array.from({ length: 6 }, () => accept(created.token)));
    const statuses = results.map((res) => res.status).sort();
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.every((status) => status === 201 || status === 404 || status === 409)).toBe(
      true,
    );
    const users = await readBody(
      await send(app, "GET", "/v1/apps/sierra/users?email=race@contractor.io", admin),
      listUsers,
      200,
    );
    expect(users.pagination.total).toBe(1);
  });

  it("refuses revoked and expired invites, and weak passwords without using the invite up", async () => {
    const revoked = await invite({ email: "gone@contractor.io" });
    expect((await send(app, "DELETE", `/v1/apps/sierra/invites/${revoked.id}`, admin)).status).toBe(
      200,
    );
    await expectError(await accept(revoked.token), 404, "not_found");

    const short = await invite({ email: "late@contractor.io", expires_in_hours: 1 });
    await expectError(await accept(short.token, "short"), 400, "validation_error");
    clock.advance(3_600_001);
    await expectError(await accept(short.token), 404, "not_found");
    await expectError(await accept("inv_tok_made_up"), 404, "not_found");
  });
});
