import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import { apps, users } from "../src/db/schema";
import type { DatabasePort } from "../src/ports";
import { forgotPassword, resetPassword } from "../src/routes/passwords/passwords.routes";
import { issueAccountToken } from "../src/services/account-tokens";
import { adminHeaders, createTestApp, createTestClock } from "./support/app";
import { databaseBackends } from "./support/backends";
import { expectError, readBody, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, signIn } from "./support/identity";
import { latestMessageTo, messagesTo, tokenIn } from "./support/mailbox";
import { totpCode } from "./support/totp";

const admin = { headers: adminHeaders };
type Tokens = { accessToken: string; refreshToken: string };
const NEW_PASSWORD = "a brand new passphrase";
const LISTED = "hunter2hunter2";

/**
 * A loopback stand-in for the Pwned Passwords range API: it lists LISTED's SHA-1 suffix among
 * padding lines, records the prefixes asked, and drops connections while `down`.
 */
function rangeApi() {
  const sha1 = createHash("sha1").update(LISTED).digest("hex").toUpperCase();
  const state = { down: false, asked: [] as string[] };
  const server = createServer((req, res) => {
    if (state.down) {
      req.socket.destroy();
      return;
    }
    const prefix = (req.url ?? "").split("/").pop() ?? "";
    state.asked.push(prefix);
    const lines = [
      "0018A45C4D1DEF81644B54AB7F969B88D65:0",
      "00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2",
    ];
    if (prefix === sha1.slice(0, 5)) lines.push(`${sha1.slice(5)}:3861493`);
    res.writeHead(200, { "content-type": "text/plain" }).end(lines.join("\r\n"));
  });
  return { server, state };
}

describe.each(databaseBackends("password reset and change"))("passwords on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  const clock = createTestClock();
  const breached = rangeApi();
  let userCount = 0;

  beforeAll(async () => {
    await new Promise<void>((resolve) => breached.server.listen(0, "127.0.0.1", resolve));
    const { port } = breached.server.address() as AddressInfo;
    const opened = await backend.open();
    db = opened.db;
    dispose = opened.dispose;
    ({ app } = createTestApp({
      db,
      clock,
      env: {
        DEV_MAILBOX: "true",
        BRUTEFORCE_MAX_ATTEMPTS: "5",
        BREACHED_PASSWORDS_API_URL: `http://127.0.0.1:${port}/range/`,
      },
    }));
    await createTenant(app, "pw");
    await createTenant(app, "pw2");
  });
  afterAll(async () => {
    await dispose();
    await new Promise((resolve) => breached.server.close(resolve));
  });

  /** A fresh user of `pw` (mail limits are per address), signed in `sessions` times. */
  async function newUser(sessions = 1) {
    const email = `user${++userCount}@pw.test`;
    const res = await send(app, "POST", "/v1/apps/pw/users", {
      body: { email, password: PASSWORD },
      ...admin,
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const { id } = (await readJson(res)).data;
    const tokens = [];
    for (let i = 0; i < sessions; i++) tokens.push(await signIn(app, "pw", email));
    return { id: id as string, email, tokens };
  }

  const forgot = (email: string, appName = "pw") =>
    send(app, "POST", `/v1/apps/${appName}/password/forgot`, { body: { email } });
  const reset = (
    token: string,
    password = NEW_PASSWORD,
    appName = "pw",
    headers: Record<string, string> = {},
  ) =>
    send(app, "POST", `/v1/apps/${appName}/password/reset`, {
      body: { token, password },
      headers,
    });
  async function resetToken(email: string) {
    const res = await forgot(email);
    expect(await readBody(res, forgotPassword, 202)).toEqual({ status: "reset_sent" });
    return tokenIn(await latestMessageTo(db, email, "password_reset"), "pwr_");
  }
  const me = (accessToken: string) =>
    send(app, "GET", "/v1/users/me", { headers: bearer(accessToken) });
  const refresh = (refreshToken: string) =>
    send(app, "POST", "/v1/apps/pw/tokens", {
      body: { grant_type: "refresh_token", refresh_token: refreshToken },
    });
  const passwordGrant = (email: string, password: string) =>
    send(app, "POST", "/v1/apps/pw/tokens", {
      body: { grant_type: "password", email, password },
    });
  const changePassword = (
    accessToken: string,
    body: Record<string, string>,
    headers: Record<string, string> = {},
  ) =>
    send(app, "POST", "/v1/users/me/password", {
      body,
      headers: { ...bearer(accessToken), ...headers },
    });
  async function auditActions(userId: string) {
    const res = await send(
      app,
      "GET",
      `/v1/apps/pw/audit-logs?target_id=${userId}&limit=100`,
      admin,
    );
    return (await readJson(res)).data.map((event: { action: string }) => event.action) as string[];
  }
  async function storedUser(id: string) {
    const session = db.session();
    try {
      const [row] = await session.db.select().from(users).where(eq(users.id, id));
      return row;
    } finally {
      await session.release();
    }
  }

  it("mails a reset link, sets the new password with it and ends every session", async () => {
    const user = await newUser(2);
    expect((await storedUser(user.id))?.email_verified_at).toBeNull();
    const token = await resetToken(user.email);
    const mail = await latestMessageTo(db, user.email, "password_reset");
    expect(mail.text_body).toContain(
      `http://heimdall.test/v1/apps/pw/pages/reset-password?token=${token}`,
    );

    expect(await readBody(await reset(token), resetPassword, 200)).toEqual({
      status: "password_reset",
    });
    clock.advance(1_000);
    for (const { accessToken, refreshToken } of user.tokens) {
      await expectError(await me(accessToken), 401, "unauthorized");
      await expectError(await refresh(refreshToken), 400, "invalid_grant");
    }
    await expectError(await passwordGrant(user.email, PASSWORD), 400, "invalid_grant");
    const signedIn = await passwordGrant(user.email, NEW_PASSWORD);
    expect(signedIn.status).toBe(200);
    expect((await me((await readJson(signedIn)).access_token)).status).toBe(200);
    // The link reached the address: it counts as verified.
    expect((await storedUser(user.id))?.email_verified_at).toEqual(expect.any(Date));

    await expectError(await reset(token, "yet another passphrase"), 400, "invalid_request");
    expect(await auditActions(user.id)).toEqual(
      expect.arrayContaining(["password.reset_requested", "password.reset"]),
    );
  });

  it("takes form bodies, as a plain HTML form posts them", async () => {
    const user = await newUser(0);
    const res = await app.request("/v1/apps/pw/password/forgot", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ email: user.email }).toString(),
    });
    expect(await readBody(res, forgotPassword, 202)).toEqual({ status: "reset_sent" });
    expect(await messagesTo(db, user.email, "password_reset")).toHaveLength(1);
    await expectError(
      await send(app, "POST", "/v1/apps/pw/password/forgot", { body: { mail: user.email } }),
      400,
      "validation_error",
    );
  });

  it("refuses a reset link that expired, was superseded, is of another purpose or app", async () => {
    const user = await newUser(0);
    const expired = await resetToken(user.email);
    clock.advance(31 * 60_000);
    const refused = await expectError(await reset(expired), 400, "invalid_request");
    expect(refused.error.message).toBe("The link is invalid or has expired");

    const first = await resetToken(user.email);
    const second = await resetToken(user.email);
    await expectError(await reset(first), 400, "invalid_request");

    // A sign-in link of the same user, and an email-verification token, are not reset links.
    expect(
      (await send(app, "POST", "/v1/apps/pw/otp/start", { body: { email: user.email } })).status,
    ).toBe(202);
    const signInLink = tokenIn(await latestMessageTo(db, user.email, "email_otp"), "otl_");
    await expectError(await reset(signInLink), 400, "invalid_request");
    const session = db.session();
    let verification: string;
    try {
      const [record] = await session.db.select().from(apps).where(eq(apps.name, "pw"));
      ({ token: verification } = await issueAccountToken(
        session.db,
        record!,
        { userId: user.id, purpose: "email_verification", email: user.email },
        clock.now(),
      ));
    } finally {
      await session.release();
    }
    expect(verification).toMatch(/^emv_/);
    await expectError(await reset(verification), 400, "invalid_request");
    // Another app's endpoint does not take it either; none of this spent it.
    await expectError(await reset(second, NEW_PASSWORD, "pw2"), 400, "invalid_request");
    expect((await reset(second)).status).toBe(200);
  });

  it("checks the new password against the policy before spending the link", async () => {
    const user = await newUser(0);
    const token = await resetToken(user.email);
    const weak = await expectError(await reset(token, "short"), 400, "validation_error");
    expect(weak.error.details?.[0]?.field).toBe("json.password");
    expect((await reset(token)).status).toBe(200);
  });

  it("locks an IP out after guessing reset tokens, even for a right one", async () => {
    const user = await newUser(0);
    const token = await resetToken(user.email);
    const ip = { "x-test-client-ip": "198.51.100.7" };
    // The sixth failure goes over BRUTEFORCE_MAX_ATTEMPTS (5) and locks the IP.
    for (let i = 0; i < 6; i++) {
      await expectError(
        await reset(`pwr_guess${i}aaaaaaaaaaaaaaaaaaaa`, NEW_PASSWORD, "pw", ip),
        400,
        "invalid_request",
      );
    }
    const locked = await expectError(
      await reset(token, NEW_PASSWORD, "pw", ip),
      429,
      "rate_limited",
    );
    expect(locked.error.message).toMatch(/Too many failed attempts/);
    // Another IP is not locked, and the token is still good.
    expect(
      (await reset(token, NEW_PASSWORD, "pw", { "x-test-client-ip": "198.51.100.8" })).status,
    ).toBe(200);
    clock.advance(61_000);
  });

  it("changes the password: the current one checked with a lockout, other sessions ended", async () => {
    const user = await newUser(2);
    const [caller, other] = user.tokens as [Tokens, Tokens];
    const ip = { "x-test-client-ip": "198.51.100.20" };
    for (let i = 0; i < 6; i++) {
      const wrong = await expectError(
        await changePassword(
          caller.accessToken,
          { current_password: "not it at all", new_password: NEW_PASSWORD },
          ip,
        ),
        400,
        "invalid_request",
      );
      expect(wrong.error.message).toBe("The password is not right");
    }
    await expectError(
      await changePassword(
        caller.accessToken,
        { current_password: PASSWORD, new_password: NEW_PASSWORD },
        ip,
      ),
      429,
      "rate_limited",
    );
    // The lock is on this check from this IP, not on the user's sign-in.
    expect(
      (
        await send(app, "POST", "/v1/apps/pw/tokens", {
          body: { grant_type: "password", email: user.email, password: PASSWORD },
          headers: ip,
        })
      ).status,
    ).toBe(200);
    clock.advance(61_000);

    const changed = await changePassword(
      caller.accessToken,
      { current_password: PASSWORD, new_password: NEW_PASSWORD },
      ip,
    );
    expect(changed.status, await changed.clone().text()).toBe(204);
    expect((await me(caller.accessToken)).status).toBe(200);
    expect((await refresh(caller.refreshToken)).status).toBe(200);
    await expectError(await me(other.accessToken), 401, "unauthorized");
    await expectError(await refresh(other.refreshToken), 400, "invalid_grant");
    clock.advance(1_000);
    await expectError(await passwordGrant(user.email, PASSWORD), 400, "invalid_grant");
    expect((await passwordGrant(user.email, NEW_PASSWORD)).status).toBe(200);

    const notice = await latestMessageTo(db, user.email, "password_changed");
    expect(notice.text_body).toContain(user.email);
    expect(await auditActions(user.id)).toEqual(
      expect.arrayContaining(["auth.login.failed", "auth.lockout", "password.changed"]),
    );
  });

  it("changes the password through GraphQL with the same rule", async () => {
    const user = await newUser(2);
    const [caller, other] = user.tokens as [Tokens, Tokens];
    const mutate = async (currentPassword: string, newPassword: string) => {
      const res = await send(app, "POST", "/v1/gql", {
        body: {
          query:
            "mutation ($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
          variables: { c: currentPassword, n: newPassword },
        },
        headers: bearer(caller.accessToken),
      });
      expect(res.status).toBe(200);
      return readJson(res);
    };
    const wrong = await mutate("not it at all", NEW_PASSWORD);
    expect(wrong.errors[0]).toMatchObject({
      message: "The password is not right",
      extensions: { code: "INVALID_REQUEST" },
    });
    const weak = await mutate(PASSWORD, "short");
    expect(weak.errors[0].extensions.code).toBe("VALIDATION_ERROR");
    expect(await mutate(PASSWORD, NEW_PASSWORD)).toEqual({ data: { changePassword: true } });
    expect((await me(caller.accessToken)).status).toBe(200);
    await expectError(await me(other.accessToken), 401, "unauthorized");
    expect(await auditActions(user.id)).toContain("password.changed");
  });

  it("refuses the change to a token that is not a user's", async () => {
    await expectError(
      await send(app, "POST", "/v1/users/me/password", {
        body: { current_password: PASSWORD, new_password: NEW_PASSWORD },
        ...admin,
      }),
      403,
      "forbidden",
    );
    await expectError(
      await send(app, "POST", "/v1/users/me/password", {
        body: { current_password: PASSWORD, new_password: NEW_PASSWORD },
      }),
      401,
      "unauthorized",
    );
  });

  it("still asks for the second factor after a reset", async () => {
    const user = await newUser(1);
    const token = bearer(user.tokens[0]!.accessToken);
    const enrolled = await send(app, "POST", "/v1/users/me/2fa", { headers: token });
    const { secret } = (await readJson(enrolled)).data;
    const confirmed = await send(app, "POST", "/v1/users/me/2fa/verify", {
      body: { code: totpCode(secret, clock.now()) },
      headers: token,
    });
    expect(confirmed.status).toBe(200);

    expect((await reset(await resetToken(user.email))).status).toBe(200);
    clock.advance(1_000);
    const challenge = await expectError(
      await passwordGrant(user.email, NEW_PASSWORD),
      401,
      "mfa_required",
    );
    expect(challenge.error.mfa_token).toMatch(/^ey/);
  });

  it("refuses a breached password, accepts others, and accepts when the check is down", async () => {
    const patched = await send(app, "PATCH", "/v1/apps/pw/settings", {
      body: { password_policy: { min_length: 10, check_breached: true } },
      ...admin,
    });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const user = await newUser(1);
    const caller = user.tokens[0]!.accessToken;

    breached.state.asked.length = 0;
    const refused = await expectError(
      await changePassword(caller, { current_password: PASSWORD, new_password: LISTED }),
      400,
      "validation_error",
    );
    expect(refused.error.details).toEqual([
      { field: "json.new_password", reason: "appears in a known data breach; choose another" },
    ]);
    // k-anonymity: only five hex digits of the SHA-1 left.
    expect(breached.state.asked).toEqual([
      createHash("sha1").update(LISTED).digest("hex").toUpperCase().slice(0, 5),
    ]);
    expect(
      (await changePassword(caller, { current_password: PASSWORD, new_password: NEW_PASSWORD }))
        .status,
    ).toBe(204);

    breached.state.down = true;
    try {
      const failOpen = await changePassword(caller, {
        current_password: NEW_PASSWORD,
        new_password: LISTED,
      });
      expect(failOpen.status, await failOpen.clone().text()).toBe(204);
    } finally {
      breached.state.down = false;
    }
    clock.advance(1_000);
    expect((await passwordGrant(user.email, LISTED)).status).toBe(200);
    await send(app, "PATCH", "/v1/apps/pw/settings", {
      body: { password_policy: { min_length: 10, check_breached: false } },
      ...admin,
    });
  });
});
