import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { createInvite } from "../src/routes/invites/invites.routes";
import { sendVerification, signUp, verifyEmail } from "../src/routes/signup/signup.routes";
import { adminHeaders, createTestApp, createTestClock } from "./support/app";
import { databaseBackends } from "./support/backends";
import { expectError, readBody, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send } from "./support/identity";
import { latestMessageTo, messagesTo, tokenIn } from "./support/mailbox";
import { delegatedToken } from "./support/oauth";
import { auditActionsAbout, configure, postForm, storedUser } from "./support/signup";
import { totpCode } from "./support/totp";

const admin = { headers: adminHeaders };
const STRONG = "a long enough passphrase";

describe.each(databaseBackends("sign-up"))("sign-up on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  const clock = createTestClock();
  let appIds: Record<string, string> = {};
  let otherAdminRefresh = "";

  beforeAll(async () => {
    const opened = await backend.open();
    ({ db, dispose } = opened);
    ({ app } = createTestApp({
      db,
      clock,
      env: { DEV_MAILBOX: "true", BRUTEFORCE_MAX_ATTEMPTS: "5" },
    }));
    appIds = {};
    for (const name of ["closed", "opened", "invited", "verified", "other"]) {
      const tenant = await createTenant(app, name);
      appIds[name] = tenant.app.id;
      if (name === "other") otherAdminRefresh = tenant.admin.refreshToken;
    }
    await configure(app, "opened", {
      signup: "open",
      signup_email_domains: ["acme.co"],
      signup_default_role: "reader",
    });
    await configure(app, "invited", { signup: "invite_only" });
    await configure(app, "verified", {
      signup: "open",
      require_email_verification: true,
      signup_default_role: "reader",
    });
    await configure(app, "other", { signup: "open", require_email_verification: true });
  });
  afterAll(() => dispose());

  const register = (appName: string, body: Record<string, unknown>, ip?: string) =>
    send(app, "POST", `/v1/apps/${appName}/signup`, {
      body,
      headers: ip ? { "x-test-client-ip": ip } : {},
    });
  const verify = (appName: string, token: string, ip?: string) =>
    send(app, "POST", `/v1/apps/${appName}/email/verify`, {
      body: { token },
      headers: ip ? { "x-test-client-ip": ip } : {},
    });
  const passwordGrant = (appName: string, email: string, password = STRONG) =>
    send(app, "POST", `/v1/apps/${appName}/tokens`, {
      body: { grant_type: "password", email, password },
    });
  const verificationToken = async (to: string) =>
    tokenIn(await latestMessageTo(db, to, "email_verification"), "emv_");

  it("refuses sign-up while the app's policy is closed (the default)", async () => {
    const res = await register("closed", { email: "jo@acme.co", password: STRONG });
    const body = await expectError(res, 403, "forbidden");
    expect(body.error.message).toBe("Sign-up is closed for this app");
    expect(await storedUser(db, appIds.closed!, "jo@acme.co")).toBeUndefined();
    expect(await messagesTo(db, "jo@acme.co")).toEqual([]);
  });

  it("open, verification not required: 201 with tokens, the default role, a verification mail", async () => {
    const res = await register("opened", {
      email: "Ann@acme.co",
      password: STRONG,
      display_name: "Ann",
    });
    const body = await readBody(res, signUp, 201);
    expect(body).toMatchObject({
      token_type: "Bearer",
      refresh_token: expect.stringMatching(/^rt_/),
      user: {
        email: "Ann@acme.co",
        display_name: "Ann",
        roles: ["reader"],
        email_verified: false,
        email_verified_at: null,
      },
    });
    const me = await readJson(
      await send(app, "GET", "/v1/users/me", { headers: bearer(body.access_token) }),
    );
    expect(me.data.id).toBe(body.user.id);
    const mail = await latestMessageTo(db, "ann@acme.co", "email_verification");
    expect(mail.text_body).toContain(
      "http://heimdall.test/v1/apps/opened/pages/verify-email?token=emv_",
    );
    expect(await auditActionsAbout(db, body.user.id)).toEqual([
      "email.verification_sent",
      "user.signed_up",
    ]);

    // Only this mode tells a taken address apart (documented).
    await expectError(
      await register("opened", { email: "ann@ACME.co", password: STRONG }),
      409,
      "conflict",
    );
  });

  it("open: the domain allow-list and the password policy are enforced (400)", async () => {
    const offDomain = await expectError(
      await register("opened", { email: "eve@evil.example", password: STRONG }),
      400,
      "validation_error",
    );
    expect(offDomain.error.details).toEqual([
      { field: "json.email", reason: expect.stringContaining("acme.co") },
    ]);
    const weak = await expectError(
      await register("opened", { email: "weak@acme.co", password: "short" }),
      400,
      "validation_error",
    );
    expect(weak.error.details?.[0]?.field).toBe("json.password");
    expect(await storedUser(db, appIds.opened!, "eve@evil.example")).toBeUndefined();
    expect(await storedUser(db, appIds.opened!, "weak@acme.co")).toBeUndefined();
  });

  it("accepts a form body as well as JSON", async () => {
    const res = await postForm(app, "/v1/apps/opened/signup", {
      email: "form@acme.co",
      password: STRONG,
    });
    expect((await readBody(res, signUp, 201)).user.email).toBe("form@acme.co");
  });

  it("invite_only: needs the token of a pending invite for the same email; the role is the invite's", async () => {
    const invite = async (email: string) => {
      const res = await send(app, "POST", "/v1/apps/invited/invites", {
        body: { email, role: "reader", expires_in_hours: 24 },
        ...admin,
      });
      return (await readBody(res, createInvite, 201)).data;
    };
    const inv = await invite("kim@acme.co");
    const without = await expectError(
      await register("invited", { email: "kim@acme.co", password: STRONG }),
      403,
      "forbidden",
    );
    expect(without.error.message).toContain("invite");
    await expectError(
      await register("invited", {
        email: "someone-else@acme.co",
        password: STRONG,
        invite_token: inv.token,
      }),
      403,
      "forbidden",
    );
    const ok = await register("invited", {
      email: "kim@acme.co",
      password: STRONG,
      invite_token: inv.token,
    });
    const body = await readBody(ok, signUp, 201);
    expect(body.user.roles).toEqual(["reader"]);
    expect(await auditActionsAbout(db, body.user.id)).toContain("user.signed_up");
    const pending = await readJson(await send(app, "GET", "/v1/apps/invited/invites", admin));
    expect(pending.data.map((i: { id: string }) => i.id)).not.toContain(inv.id);
    // The single use is spent.
    await expectError(
      await register("invited", {
        email: "kim@acme.co",
        password: STRONG,
        invite_token: inv.token,
      }),
      403,
      "forbidden",
    );
  });

  it("verification required: 202, an unverified user, sign-in refused until the link is followed", async () => {
    const res = await register("verified", { email: "vic@acme.co", password: STRONG });
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('{"status":"verification_sent"}');
    const user = await storedUser(db, appIds.verified!, "vic@acme.co");
    expect(user).toMatchObject({ email_verified_at: null, last_login_at: null });

    const refused = await expectError(
      await passwordGrant("verified", "vic@acme.co"),
      403,
      "email_not_verified",
    );
    expect(refused.error.message).toContain("Confirm your email");
    // A wrong password is still the generic refusal: the 403 comes only after the password.
    await expectError(
      await passwordGrant("verified", "vic@acme.co", "not the password"),
      400,
      "invalid_grant",
    );

    const token = await verificationToken("vic@acme.co");
    const verified = await readBody(await verify("verified", token), verifyEmail, 200);
    expect(verified.data).toMatchObject({
      id: user!.id,
      email_verified: true,
      roles: ["reader"],
    });
    expect(
      (await storedUser(db, appIds.verified!, "vic@acme.co"))?.email_verified_at,
    ).not.toBeNull();
    expect((await passwordGrant("verified", "vic@acme.co")).status).toBe(200);
    expect(await auditActionsAbout(db, user!.id)).toEqual(
      expect.arrayContaining(["user.signed_up", "email.verification_sent", "email.verified"]),
    );
  });

  it("verification required: a taken address gets the same 202 and an account_exists mail, no user change", async () => {
    const owner = await storedUser(db, appIds.verified!, "admin@verified.test");
    const res = await register("verified", { email: "admin@verified.test", password: STRONG });
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('{"status":"verification_sent"}');
    expect(await storedUser(db, appIds.verified!, "admin@verified.test")).toEqual(owner);
    const mail = await latestMessageTo(db, "admin@verified.test", "account_exists");
    expect(tokenIn(mail, "pwr_")).toMatch(/^pwr_/);
    expect(await messagesTo(db, "admin@verified.test", "email_verification")).toEqual([]);
    expect(await auditActionsAbout(db, owner!.id)).toContain("user.signup_refused");
  });

  it("resends a verification link only to an unverified user; always 202", async () => {
    const ask = (email: string) =>
      send(app, "POST", "/v1/apps/verified/email/verification", { body: { email } });
    await register("verified", { email: "res@acme.co", password: STRONG });
    const first = await verificationToken("res@acme.co");
    await readBody(await ask("res@acme.co"), sendVerification, 202);
    const second = await verificationToken("res@acme.co");
    expect(second).not.toBe(first);
    // The new link supersedes the old one.
    await expectError(await verify("verified", first), 400, "invalid_request");
    await readBody(await verify("verified", second), verifyEmail, 200);

    const before = (await messagesTo(db, "res@acme.co")).length;
    await readBody(await ask("res@acme.co"), sendVerification, 202);
    await readBody(await ask("nobody@acme.co"), sendVerification, 202);
    expect((await messagesTo(db, "res@acme.co")).length).toBe(before);
    expect(await messagesTo(db, "nobody@acme.co")).toEqual([]);
  });

  it("refuses used, expired, other-purpose and other-app links with one 400", async () => {
    const expectInvalid = async (appName: string, token: string) => {
      const body = await expectError(await verify(appName, token), 400, "invalid_request");
      expect(body.error.message).toBe("The link is invalid or has expired");
    };
    await register("verified", { email: "used@acme.co", password: STRONG });
    const used = await verificationToken("used@acme.co");
    await readBody(await verify("verified", used), verifyEmail, 200);
    await expectInvalid("verified", used);

    await register("verified", { email: "late@acme.co", password: STRONG });
    const late = await verificationToken("late@acme.co");
    clock.advance(24 * 3_600_000 + 1000);
    await expectInvalid("verified", late);
    expect((await storedUser(db, appIds.verified!, "late@acme.co"))?.email_verified_at).toBeNull();

    // The reset link of an account_exists mail is not a verification link.
    await register("verified", { email: "reader@verified.test", password: STRONG });
    const reset = tokenIn(
      await latestMessageTo(db, "reader@verified.test", "account_exists"),
      "pwr_",
    );
    await expectInvalid("verified", reset);

    await register("other", { email: "elsewhere@acme.co", password: STRONG });
    const foreign = await verificationToken("elsewhere@acme.co");
    await expectInvalid("verified", foreign);
    // Unspent by the failed attempt: it still works in its own app.
    await readBody(await verify("other", foreign), verifyEmail, 200);
  });

  it("locks out an IP guessing links (429), even for a then-valid link", async () => {
    await register("verified", { email: "guess@acme.co", password: STRONG });
    const real = await verificationToken("guess@acme.co");
    const ip = "203.0.113.77";
    // BRUTEFORCE_MAX_ATTEMPTS=5: the sixth failure sets the lock.
    for (let i = 0; i < 6; i += 1) {
      await expectError(
        await verify("verified", `emv_guess${i}xxxxxxxxxxxxxxxx`, ip),
        400,
        "invalid_request",
      );
    }
    await expectError(
      await verify("verified", "emv_guessagainxxxxxxxxxxxx", ip),
      429,
      "rate_limited",
    );
    await expectError(await verify("verified", real, ip), 429, "rate_limited");
    // Another IP is not affected.
    await readBody(await verify("verified", real, "203.0.113.78"), verifyEmail, 200);
  });

  it("email_verified is in userinfo (email scope) and follows the user's state", async () => {
    const redirectUri = "https://client.example/callback";
    const client = await readJson(
      await send(app, "POST", "/v1/apps/opened/oauth/clients", {
        body: {
          name: "Web",
          type: "public",
          redirect_uris: [redirectUri],
          scopes: ["openid", "email"],
        },
        ...admin,
      }),
    );
    const { accessToken } = await delegatedToken(app, {
      appName: "opened",
      clientId: client.data.client_id,
      redirectUri,
      email: "reader@opened.test",
      scope: "openid email",
    });
    const userinfo = async () =>
      readJson(
        await send(app, "GET", "/v1/apps/opened/oauth/userinfo", { headers: bearer(accessToken) }),
      );
    expect(await userinfo()).toMatchObject({ email: "reader@opened.test", email_verified: false });
    const reader = await storedUser(db, appIds.opened!, "reader@opened.test");
    await send(app, "PATCH", `/v1/apps/opened/users/${reader!.id}`, {
      body: { email_verified: true },
      ...admin,
    });
    expect(await userinfo()).toMatchObject({ email_verified: true });
  });

  it("the OAuth sign-in page refuses an unverified user with 403 after the password", async () => {
    const redirectUri = "https://client.example/callback";
    const client = await readJson(
      await send(app, "POST", "/v1/apps/verified/oauth/clients", {
        body: { name: "Web", type: "public", redirect_uris: [redirectUri], scopes: ["openid"] },
        ...admin,
      }),
    );
    await register("verified", { email: "page@acme.co", password: STRONG });
    const query = new URLSearchParams({
      response_type: "code",
      client_id: client.data.client_id,
      redirect_uri: redirectUri,
      scope: "openid",
      state: "s",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
    });
    const page = await app.request(`/v1/apps/verified/oauth/authorize?${query}`);
    const tx = /name="tx" value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
    const wrong = await postForm(app, "/v1/apps/verified/oauth/authorize", {
      tx,
      email: "page@acme.co",
      password: "not it",
    });
    expect(wrong.status).toBe(401);
    const refused = await postForm(app, "/v1/apps/verified/oauth/authorize", {
      tx,
      email: "page@acme.co",
      password: STRONG,
    });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("Confirm your email first");
  });

  it("with 2FA on, the refusal comes before the challenge, and the mfa grant refuses too", async () => {
    // Signed in before the app required verification; the clock has moved past its access token.
    const refreshed = await send(app, "POST", "/v1/apps/other/tokens/refresh", {
      body: { refresh_token: otherAdminRefresh },
    });
    const headers = bearer((await readJson(refreshed)).access_token);
    const started = await readJson(await send(app, "POST", "/v1/users/me/2fa", { headers }));
    const secret = started.data.secret as string;
    const confirmed = await send(app, "POST", "/v1/users/me/2fa/verify", {
      body: { code: totpCode(secret, clock.now()) },
      headers,
    });
    expect(confirmed.status).toBe(200);
    await expectError(
      await passwordGrant("other", "admin@other.test", PASSWORD),
      403,
      "email_not_verified",
    );
    const adminUser = await storedUser(db, appIds.other!, "admin@other.test");
    const setVerified = (value: boolean) =>
      send(app, "PATCH", `/v1/apps/other/users/${adminUser!.id}`, {
        body: { email_verified: value },
        ...admin,
      });
    expect((await setVerified(true)).status).toBe(200);
    const challenge = await expectError(
      await passwordGrant("other", "admin@other.test", PASSWORD),
      401,
      "mfa_required",
    );
    expect((await setVerified(false)).status).toBe(200);
    clock.advance(30_000);
    await expectError(
      await send(app, "POST", "/v1/apps/other/tokens", {
        body: {
          grant_type: "mfa_otp",
          mfa_token: challenge.error.mfa_token,
          otp: totpCode(secret, clock.now()),
        },
      }),
      403,
      "email_not_verified",
    );
  });

  it("tenant users created by admins are unaffected where verification is not required", async () => {
    expect((await passwordGrant("opened", "admin@opened.test", PASSWORD)).status).toBe(200);
  });
});
