import { createHash } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPasswordHasher } from "../src/adapters/argon2-hasher";
import { nodeArgon2 } from "../src/adapters/node/argon2";
import type { App } from "../src/app";
import { auditLogs, refreshTokens, sessions, users } from "../src/db/schema";
import type { Database, GeoIp, PasswordHasher } from "../src/ports";
import { adminHeaders, createTestApp, createTestClock, testEnv } from "./support/app";
import { type DatabaseBackend, databaseBackends } from "./support/backends";
import { expectError, readJson } from "./support/http";
import { createTenant, PASSWORD, send, type Tenant } from "./support/identity";

const admin = { headers: adminHeaders };
const geoip: GeoIp = {
  locate: (ip) =>
    ip === "81.2.69.142" ? { city: "London", country: "United Kingdom", country_code: "GB" } : null,
};

/**
 * The password grant, read in one statement and written in another: what it stores (the session,
 * its refresh token, the user's last sign-in, the audit event) and what it refuses, on each
 * database.
 */
describe.each(databaseBackends("password sign-in"))("password sign-in on $name", (backend) => {
  let opened: Awaited<ReturnType<DatabaseBackend["open"]>>;
  let app: App;
  let db: Database;
  let tenant: Tenant;
  /** Runs once, inside the next password check, after the user was read. */
  let duringCheck: (() => Promise<void>) | undefined;
  const clock = createTestClock();
  beforeAll(async () => {
    opened = await backend.open();
    const hasher = createPasswordHasher(nodeArgon2, {
      memoryCost: Number(testEnv.PASSWORD_HASH_MEMORY_KIB),
      timeCost: Number(testEnv.PASSWORD_HASH_ITERATIONS),
    });
    const passwords: PasswordHasher = {
      hash: (password) => hasher.hash(password),
      dummyHash: hasher.dummyHash,
      async verify(stored, password) {
        const step = duringCheck;
        duringCheck = undefined;
        await step?.();
        return hasher.verify(stored, password);
      },
    };
    ({ app } = createTestApp({ db: opened.db, clock, ports: { geoip, passwords } }));
    db = opened.db.session().db;
    tenant = await createTenant(app, "sierra");
  });
  afterAll(() => opened.dispose());

  const signIn = (email: string, password = PASSWORD) =>
    send(app, "POST", "/v1/apps/sierra/tokens", {
      body: { grant_type: "password", email, password },
      headers: { "x-test-client-ip": "81.2.69.142", "user-agent": "sierra-test/1" },
    });
  const auditFor = (action: string, userId: string) =>
    db
      .select()
      .from(auditLogs)
      .where(and(eq(auditLogs.action, action), eq(auditLogs.actor_id, userId)));

  it("stores the session, its refresh token, the sign-in time and the audit event, and signs the user's roles", async () => {
    clock.advance(1000);
    const res = await signIn(tenant.reader.email.toUpperCase());
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await readJson(res);
    expect(decodeJwt(body.access_token)).toMatchObject({
      sub: tenant.reader.id,
      roles: ["reader"],
      permissions: ["projects:read"],
    });

    const now = clock.now().getTime();
    const hash = createHash("sha256").update(body.refresh_token).digest("hex");
    const [token] = await db.select().from(refreshTokens).where(eq(refreshTokens.token_hash, hash));
    expect(token).toMatchObject({ status: "active", replaced_by: null });
    expect(token!.created_at.getTime()).toBe(now);
    const [session] = await db.select().from(sessions).where(eq(sessions.id, token!.session_id));
    expect(session).toMatchObject({
      app_id: tenant.app.id,
      user_id: tenant.reader.id,
      ip_address: "81.2.69.142",
      user_agent: "sierra-test/1",
      location: { city: "London", country: "United Kingdom", country_code: "GB" },
      client_id: null,
      scopes: null,
      revoked_at: null,
    });
    expect(session!.created_at.getTime()).toBe(now);
    expect(session!.last_used_at.getTime()).toBe(now);
    // The app's default refresh-token lifetime, 30 days.
    expect(session!.expires_at.getTime()).toBe(now + 2_592_000_000);
    expect(token!.expires_at.getTime()).toBe(session!.expires_at.getTime());

    const [user] = await db.select().from(users).where(eq(users.id, tenant.reader.id));
    expect(user?.last_login_at?.getTime()).toBe(now);
    const succeeded = (await auditFor("auth.login.succeeded", tenant.reader.id)).filter(
      (row) => row.target_id === session!.id,
    );
    expect(succeeded).toHaveLength(1);
    expect(succeeded[0]).toMatchObject({
      app_id: tenant.app.id,
      actor_type: "user",
      target_type: "session",
      metadata: { grant_type: "password" },
      ip_address: "81.2.69.142",
      user_agent: "sierra-test/1",
      location: { city: "London", country_code: "GB" },
    });
    expect(succeeded[0]!.timestamp.getTime()).toBe(now);
  });

  it("refuses a banned user, read with the user at the time of the sign-in, and audits why", async () => {
    const ban = await send(app, "POST", "/v1/admin/bans", {
      body: {
        user_id: tenant.reader.id,
        reason: "abuse",
        expires_at: new Date(clock.now().getTime() + 60_000).toISOString(),
      },
      ...admin,
    });
    expect(ban.status, await ban.clone().text()).toBe(201);
    const sessionsBefore = await db
      .select()
      .from(sessions)
      .where(eq(sessions.user_id, tenant.reader.id));
    await expectError(await signIn(tenant.reader.email), 400, "invalid_grant");
    const refused = await db
      .select()
      .from(auditLogs)
      .where(
        and(eq(auditLogs.action, "auth.login.failed"), eq(auditLogs.target_id, tenant.reader.id)),
      );
    expect(refused.map((row) => row.metadata.reason)).toContain("user_banned");
    expect(
      await db.select().from(sessions).where(eq(sessions.user_id, tenant.reader.id)),
    ).toHaveLength(sessionsBefore.length);

    clock.advance(61_000);
    expect((await signIn(tenant.reader.email)).status).toBe(200);
  });

  it("writes nothing for a user deleted while their password was checked", async () => {
    const created = await send(app, "POST", "/v1/apps/sierra/users", {
      body: { email: "gone@sierra.test", password: PASSWORD },
      ...admin,
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const userId = (await readJson(created)).data.id as string;
    duringCheck = async () => {
      await db.delete(users).where(eq(users.id, userId));
    };
    await expectError(await signIn("gone@sierra.test"), 400, "invalid_grant");
    expect(duringCheck).toBeUndefined();
    expect(await db.select().from(sessions).where(eq(sessions.user_id, userId))).toEqual([]);
    expect(await auditFor("auth.login.succeeded", userId)).toEqual([]);
  });
});
