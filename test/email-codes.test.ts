import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import { users } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import { startEmailSignIn } from "../src/routes/email-codes/email-codes.routes";
import { issueToken } from "../src/routes/tokens/tokens.routes";
import { adminHeaders, createTestApp, createTestClock } from "./support/app";
import { databaseBackends } from "./support/backends";
import { expectError, readBody, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, signIn } from "./support/identity";
import { codeIn, latestMessageTo, tokenIn } from "./support/mailbox";
import { totpCode } from "./support/totp";

const admin = { headers: adminHeaders };

describe.each(databaseBackends("email sign-in codes"))("email sign-in on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  const clock = createTestClock();
  let userCount = 0;

  beforeAll(async () => {
    const opened = await backend.open();
    db = opened.db;
    dispose = opened.dispose;
    ({ app } = createTestApp({
      db,
      clock,
      env: { DEV_MAILBOX: "true", BRUTEFORCE_MAX_ATTEMPTS: "3" },
    }));
    await createTenant(app, "otp");
  });
  afterAll(() => dispose());

  async function newUser() {
    const email = `user${++userCount}@otp.test`;
    const res = await send(app, "POST", "/v1/apps/otp/users", {
      body: { email, password: PASSWORD },
      ...admin,
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return { id: (await readJson(res)).data.id as string, email };
  }
  async function start(email: string, channel: "code" | "link" = "code") {
    const res = await send(app, "POST", "/v1/apps/otp/otp/start", { body: { email, channel } });
    expect(await readBody(res, startEmailSignIn, 202)).toEqual({ status: "code_sent" });
    return latestMessageTo(db, email, "email_otp");
  }
  const grant = (body: Record<string, string>, headers: Record<string, string> = {}) =>
    send(app, "POST", "/v1/apps/otp/tokens", {
      body: { grant_type: "email_otp", ...body },
      headers,
    });
  async function auditActions(userId: string) {
    const res = await send(
      app,
      "GET",
      `/v1/apps/otp/audit-logs?target_id=${userId}&limit=100`,
      admin,
    );
    return (await readJson(res)).data as Array<{
      action: string;
      metadata: Record<string, unknown>;
    }>;
  }
  async function verifiedAt(id: string) {
    const session = db.session();
    try {
      const [row] = await session.db.select().from(users).where(eq(users.id, id));
      return row?.email_verified_at;
    } finally {
      await session.release();
    }
  }

  it("signs in with the mailed code, once, and verifies the address", async () => {
    const user = await newUser();
    expect(await verifiedAt(user.id)).toBeNull();
    const mail = await start(user.email);
    const code = codeIn(mail);
    expect(code).toMatch(/^\d{6}$/);

    const res = await grant({ email: user.email, code });
    const tokens = await readBody(res, issueToken, 200);
    expect(tokens.refresh_token).toMatch(/^rt_/);
    const me = await send(app, "GET", "/v1/users/me", { headers: bearer(tokens.access_token) });
    expect((await readJson(me)).data).toMatchObject({ id: user.id, email_verified: true });
    expect(await verifiedAt(user.id)).toEqual(clock.now());

    const again = await expectError(await grant({ email: user.email, code }), 400, "invalid_grant");
    expect(again.error.message).toBe("The code is not right or has expired");
    const events = await auditActions(user.id);
    const actions = events.map((event) => event.action);
    expect(actions).toEqual(expect.arrayContaining(["otp.sent", "otp.used", "otp.failed"]));
    const login = await send(
      app,
      "GET",
      "/v1/apps/otp/audit-logs?action=auth.login.succeeded&limit=100",
      admin,
    );
    expect(
      (await readJson(login)).data.filter(
        (event: { actor_id: string }) => event.actor_id === user.id,
      )[0]?.metadata,
    ).toEqual({ grant_type: "email_otp" });
  });

  it("signs in with the link's token the same way, once", async () => {
    const user = await newUser();
    const mail = await start(user.email, "link");
    const emailToken = tokenIn(mail, "otl_");
    expect(mail.text_body).toContain(`email_token=${encodeURIComponent(emailToken)}`);
    const res = await grant({ email_token: emailToken });
    expect(res.status, await res.clone().text()).toBe(200);
    await expectError(await grant({ email_token: emailToken }), 400, "invalid_grant");
    // The link spent the code that came with it.
    await expectError(await grant({ email: user.email, code: codeIn(mail) }), 400, "invalid_grant");
    const sent = (await auditActions(user.id)).find((event) => event.action === "otp.sent");
    expect(sent?.metadata).toEqual({ channel: "link" });
  });

  it("expires the code after 10 minutes, and a new start supersedes the old code", async () => {
    const user = await newUser();
    const expired = codeIn(await start(user.email));
    clock.advance(10 * 60_000 + 1);
    await expectError(await grant({ email: user.email, code: expired }), 400, "invalid_grant");

    const first = await start(user.email);
    const second = await start(user.email);
    // Codes are random: a collision of the two would make this test meaningless.
    if (codeIn(first) !== codeIn(second)) {
      await expectError(
        await grant({ email: user.email, code: codeIn(first) }),
        400,
        "invalid_grant",
      );
    }
    await expectError(await grant({ email_token: tokenIn(first, "otl_") }), 400, "invalid_grant");
    expect((await grant({ email: user.email, code: codeIn(second) })).status).toBe(200);
  });

  it("locks out after wrong codes, even for the right one", async () => {
    const user = await newUser();
    const code = codeIn(await start(user.email));
    const wrong = code === "000000" ? "111111" : "000000";
    const ip = { "x-test-client-ip": "198.51.100.30" };
    // The fourth failure goes over BRUTEFORCE_MAX_ATTEMPTS (3) and locks the user and the IP.
    for (let i = 0; i < 4; i++) {
      await expectError(await grant({ email: user.email, code: wrong }, ip), 400, "invalid_grant");
    }
    await expectError(await grant({ email: user.email, code }, ip), 429, "rate_limited");
    await expectError(
      await grant({ email: user.email, code }, { "x-test-client-ip": "198.51.100.31" }),
      429,
      "rate_limited",
    );
    clock.advance(61_000);
    expect((await grant({ email: user.email, code }, ip)).status).toBe(200);
    const failed = (await auditActions(user.id)).filter((event) => event.action === "otp.failed");
    expect(failed).toHaveLength(4);
  });

  it("answers an unknown address as a wrong code", async () => {
    await expectError(
      await grant({ email: "nobody@otp.test", code: "123456" }),
      400,
      "invalid_grant",
    );
    await expectError(await grant({ email: "nobody@otp.test" }), 400, "invalid_request");
  });

  it("asks a user with 2FA for the second factor", async () => {
    const user = await newUser();
    const { accessToken } = await signIn(app, "otp", user.email);
    const enrolled = await send(app, "POST", "/v1/users/me/2fa", { headers: bearer(accessToken) });
    const { secret } = (await readJson(enrolled)).data;
    const confirmed = await send(app, "POST", "/v1/users/me/2fa/verify", {
      body: { code: totpCode(secret, clock.now()) },
      headers: bearer(accessToken),
    });
    expect(confirmed.status).toBe(200);

    const code = codeIn(await start(user.email));
    const challenge = await expectError(
      await grant({ email: user.email, code }),
      401,
      "mfa_required",
    );
    clock.advance(30_000);
    const completed = await send(app, "POST", "/v1/apps/otp/tokens", {
      body: {
        grant_type: "mfa_otp",
        mfa_token: challenge.error.mfa_token,
        otp: totpCode(secret, clock.now()),
      },
    });
    expect(completed.status, await completed.clone().text()).toBe(200);
  });

  it("does not sign in a deactivated user", async () => {
    const user = await newUser();
    const code = codeIn(await start(user.email));
    await send(app, "DELETE", `/v1/apps/otp/users/${user.id}`, admin);
    await expectError(await grant({ email: user.email, code }), 400, "invalid_grant");
  });
});
