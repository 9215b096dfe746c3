import { createHash } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import { auditLogs, bans, refreshTokens, sessions, users } from "../src/db/schema";
import { newId } from "../src/lib/ids";
import type { Database } from "../src/ports";
import { refusesRefresh } from "../src/services/refresh-rotation";
import { findRefreshToRotate } from "../src/services/session-tokens";
import { signInMessages } from "../src/services/sign-in.messages";
import { adminHeaders, createTestApp, createTestClock } from "./support/app";
import { type DatabaseBackend, databaseBackends } from "./support/backends";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, signIn, type Tenant } from "./support/identity";

const admin = { headers: adminHeaders };

/**
 * Refresh rotation, written in one statement: what it stores (the spent token, its successor,
 * the session's touch, the audit row) and what it refuses, on each database.
 */
describe.each(databaseBackends("refresh rotation"))("refresh rotation on $name", (backend) => {
  let opened: Awaited<ReturnType<DatabaseBackend["open"]>>;
  let app: App;
  let db: Database;
  let tenant: Tenant;
  const clock = createTestClock();
  beforeAll(async () => {
    opened = await backend.open();
    ({ app } = createTestApp({ db: opened.db, clock }));
    db = opened.db.session().db;
    tenant = await createTenant(app, "romeo");
  });
  afterAll(() => opened.dispose());

  const refresh = (token: string) =>
    send(app, "POST", "/v1/apps/romeo/tokens/refresh", { body: { refresh_token: token } });
  const auditOf = (action: string, sessionId: string) =>
    db
      .select()
      .from(auditLogs)
      .where(and(eq(auditLogs.action, action), eq(auditLogs.target_id, sessionId)));

  it("spends the token, stores its successor, touches the session and audits, answering the user's roles", async () => {
    const { refreshToken } = await signIn(app, "romeo", tenant.admin.email);
    const hash = createHash("sha256").update(refreshToken).digest("hex");
    const [spent] = await db.select().from(refreshTokens).where(eq(refreshTokens.token_hash, hash));
    const [session] = await db
      .select()
      .from(sessions)
      .where(eq(sessions.id, spent?.session_id ?? ""));
    expect(session).toBeTruthy();
    const sessionId = session!.id;
    const before = await db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.session_id, sessionId));
    expect(before).toHaveLength(1);

    clock.advance(1000);
    const res = await refresh(refreshToken);
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await readJson(res);
    expect(body.refresh_token).toMatch(/^rt_/);
    expect(body.refresh_token).not.toBe(refreshToken);
    // The access token carries the roles read with the refresh token: admin may list users.
    expect(
      (await send(app, "GET", "/v1/users", { headers: bearer(body.access_token) })).status,
    ).toBe(200);

    const rows = await db
      .select()
      .from(refreshTokens)
      .where(eq(refreshTokens.session_id, sessionId));
    expect(rows).toHaveLength(2);
    const old = rows.find((row) => row.id === before[0]!.id)!;
    const successor = rows.find((row) => row.id !== before[0]!.id)!;
    expect(old).toMatchObject({ status: "rotated", replaced_by: successor.id });
    expect(old.rotated_at?.getTime()).toBe(clock.now().getTime());
    expect(successor).toMatchObject({ status: "active", successor_encrypted: null });
    expect(successor.expires_at.getTime()).toBe(session!.expires_at.getTime());
    expect(successor.created_at.getTime()).toBe(clock.now().getTime());
    const [touched] = await db.select().from(sessions).where(eq(sessions.id, sessionId));
    expect(touched?.last_used_at?.getTime()).toBe(clock.now().getTime());
    const audited = await auditOf("token.refreshed", sessionId);
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({
      app_id: tenant.app.id,
      actor_type: "user",
      actor_id: tenant.admin.id,
      target_type: "session",
      metadata: {},
    });
    expect(audited[0]?.timestamp.getTime()).toBe(clock.now().getTime());

    // The spent token presented again ends the family, audited; the successor dies with it.
    await expectError(await refresh(refreshToken), 400, "invalid_grant");
    expect(await auditOf("token.reuse_detected", sessionId)).toHaveLength(1);
    await expectError(await refresh(body.refresh_token), 400, "invalid_grant");
    const [ended] = await db.select().from(sessions).where(eq(sessions.id, sessionId));
    expect(ended?.revoked_at).toBeTruthy();
  });

  it("lets one of concurrent refreshes rotate: one successor, one audit row, shared within the reuse interval", async () => {
    await send(app, "PATCH", "/v1/apps/romeo/settings", {
      body: { refresh_reuse_interval: 30 },
      ...admin,
    });
    const { refreshToken } = await signIn(app, "romeo", tenant.reader.email);
    const answers = await Promise.all(Array.from({ length: 8 }, () => refresh(refreshToken)));
    expect(answers.map((res) => res.status)).toEqual(answers.map(() => 200));
    const successors = new Set(
      await Promise.all(answers.map(async (res) => (await readJson(res)).refresh_token)),
    );
    expect(successors.size).toBe(1);
    const [row] = await db
      .select({ sessionId: refreshTokens.session_id })
      .from(refreshTokens)
      .where(eq(refreshTokens.status, "rotated"))
      .orderBy(refreshTokens.rotated_at, refreshTokens.id);
    const all = await db
      .select()
      .from(refreshTokens)
      .innerJoin(sessions, eq(sessions.id, refreshTokens.session_id))
      .where(eq(sessions.user_id, tenant.reader.id));
    expect(row).toBeTruthy();
    // The reader's sign-in of createTenant, and this one (spent, and its one successor).
    expect(all.filter((r) => r.refresh_tokens.status === "rotated")).toHaveLength(1);
    const sessionId = all.find((r) => r.refresh_tokens.status === "rotated")!.sessions.id;
    expect(all.filter((r) => r.sessions.id === sessionId)).toHaveLength(2);
    expect(await auditOf("token.refreshed", sessionId)).toHaveLength(1);
    await send(app, "PATCH", "/v1/apps/romeo/settings", {
      body: { refresh_reuse_interval: 0 },
      ...admin,
    });
  });

  it("refuses a banned or deactivated user's refresh, and an expired session's", async () => {
    const banned = await signIn(app, "romeo", tenant.reader.email);
    const ban = await send(app, "POST", "/v1/admin/bans", {
      body: { user_id: tenant.reader.id, reason: "test" },
      ...admin,
    });
    expect(ban.status, await ban.clone().text()).toBe(201);
    await expectError(await refresh(banned.refreshToken), 400, "invalid_grant");
    const banId = (await readJson(ban)).data.id;
    expect((await send(app, "DELETE", `/v1/admin/bans/${banId}`, admin)).status).toBe(200);

    const deactivated = await signIn(app, "romeo", tenant.reader.email);
    const patch = await send(app, "PATCH", `/v1/apps/romeo/users/${tenant.reader.id}`, {
      body: { status: "deactivated" },
      ...admin,
    });
    expect(patch.status, await patch.clone().text()).toBe(200);
    await expectError(await refresh(deactivated.refreshToken), 400, "invalid_grant");
    await send(app, "PATCH", `/v1/apps/romeo/users/${tenant.reader.id}`, {
      body: { status: "active" },
      ...admin,
    });

    const expiring = await signIn(app, "romeo", tenant.admin.email);
    clock.advance(31 * 24 * 3600 * 1000);
    await expectError(await refresh(expiring.refreshToken), 400, "invalid_grant");
  });

  /**
   * Each way a refresh fails on the token's own state, alone: the statement rotates nothing and
   * the answer is the one refusal, and the service's reading of the token, which decides the
   * answer when the statement did not rotate, refuses it too. The allowed rows keep the two from
   * agreeing by refusing everything.
   */
  const hour = 3600_000;
  const banUser = (userId: string, ban: { expires_at?: Date; lifted_at?: Date } = {}) =>
    db
      .insert(bans)
      .values({ id: newId("ban"), kind: "user", user_id: userId, reason: "test", ...ban });
  const conditions: Array<{
    condition: string;
    refused: boolean;
    arrange: (token: { hash: string; sessionId: string; userId: string }) => Promise<unknown>;
  }> = [
    {
      condition: "a revoked token",
      refused: true,
      arrange: ({ hash }) =>
        db
          .update(refreshTokens)
          .set({ status: "revoked" })
          .where(eq(refreshTokens.token_hash, hash)),
    },
    {
      condition: "an expired token",
      refused: true,
      arrange: ({ hash }) =>
        db
          .update(refreshTokens)
          .set({ expires_at: clock.now() })
          .where(eq(refreshTokens.token_hash, hash)),
    },
    {
      condition: "a revoked session",
      refused: true,
      arrange: ({ sessionId }) =>
        db.update(sessions).set({ revoked_at: clock.now() }).where(eq(sessions.id, sessionId)),
    },
    {
      condition: "an expired session",
      refused: true,
      arrange: ({ sessionId }) =>
        db.update(sessions).set({ expires_at: clock.now() }).where(eq(sessions.id, sessionId)),
    },
    {
      condition: "the session of an OAuth client since deleted",
      refused: true,
      arrange: ({ sessionId }) =>
        db
          .update(sessions)
          .set({ client_id: "cli_deleted", scopes: ["projects:read"] })
          .where(eq(sessions.id, sessionId)),
    },
    {
      condition: "a deactivated user",
      refused: true,
      arrange: ({ userId }) =>
        db.update(users).set({ status: "deactivated" }).where(eq(users.id, userId)),
    },
    {
      condition: "a banned user",
      refused: true,
      arrange: ({ userId }) => banUser(userId),
    },
    {
      condition: "a user banned until later",
      refused: true,
      arrange: ({ userId }) =>
        banUser(userId, { expires_at: new Date(clock.now().getTime() + hour) }),
    },
    {
      condition: "a user whose ban has expired",
      refused: false,
      arrange: ({ userId }) => banUser(userId, { expires_at: clock.now() }),
    },
    {
      condition: "a user whose ban was lifted",
      refused: false,
      arrange: ({ userId }) => banUser(userId, { lifted_at: clock.now() }),
    },
    {
      condition: "a session and token expiring later",
      refused: false,
      arrange: async ({ hash, sessionId }) => {
        const later = new Date(clock.now().getTime() + hour);
        await db.update(sessions).set({ expires_at: later }).where(eq(sessions.id, sessionId));
        await db
          .update(refreshTokens)
          .set({ expires_at: later })
          .where(eq(refreshTokens.token_hash, hash));
      },
    },
  ];

  it.each(conditions)(
    "judges $condition the same way in the statement and the service (refused: $refused)",
    async ({ condition, refused, arrange }) => {
      const email = `${condition.replaceAll(" ", "-")}@romeo.test`;
      const res = await send(app, "POST", "/v1/apps/romeo/users", {
        body: { email, password: PASSWORD, role: "reader" },
        ...admin,
      });
      expect(res.status, await res.clone().text()).toBe(201);
      const user = (await readJson(res)).data;
      const { refreshToken } = await signIn(app, "romeo", email);
      const hash = createHash("sha256").update(refreshToken).digest("hex");
      const [token] = await db
        .select()
        .from(refreshTokens)
        .where(eq(refreshTokens.token_hash, hash));
      const sessionId = token!.session_id;
      await arrange({ hash, sessionId, userId: user.id });
      const found = await findRefreshToRotate(db, refreshToken, clock.now());
      expect(found && refusesRefresh(tenant.app, found, clock.now())).toBe(refused);

      const answer = await refresh(refreshToken);
      const rows = await db
        .select()
        .from(refreshTokens)
        .where(eq(refreshTokens.session_id, sessionId));
      const audited = await auditOf("token.refreshed", sessionId);
      if (!refused) {
        expect(answer.status, await answer.clone().text()).toBe(200);
        expect(rows).toHaveLength(2);
        expect(audited).toHaveLength(1);
        return;
      }
      const { error } = await expectError(answer, 400, "invalid_grant");
      expect(error.message).toBe(signInMessages.invalidRefreshToken);
      expect(rows).toEqual([found!.token]);
      expect(audited).toHaveLength(0);
      const [session] = await db.select().from(sessions).where(eq(sessions.id, sessionId));
      expect(session).toEqual(found!.session);
    },
  );

  it("refuses another app's token, an unknown one and one of another kind, rotating nothing", async () => {
    await createTenant(app, "juliet");
    const other = await signIn(app, "juliet", "reader@juliet.test");
    const hash = createHash("sha256").update(other.refreshToken).digest("hex");
    const [token] = await db.select().from(refreshTokens).where(eq(refreshTokens.token_hash, hash));
    const found = await findRefreshToRotate(db, other.refreshToken, clock.now());
    expect(found && refusesRefresh(tenant.app, found, clock.now())).toBe(true);
    for (const presented of [other.refreshToken, `rt_${"x".repeat(43)}`, "not-a-refresh-token"]) {
      const { error } = await expectError(await refresh(presented), 400, "invalid_grant");
      expect(error.message).toBe(signInMessages.invalidRefreshToken);
    }
    expect(
      await db.select().from(refreshTokens).where(eq(refreshTokens.session_id, token!.session_id)),
    ).toEqual([token]);
    expect(await auditOf("token.refreshed", token!.session_id)).toHaveLength(0);
  });
});
