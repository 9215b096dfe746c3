import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "./support/identity";
import { totpCode } from "./support/totp";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
const clock = createTestClock();

beforeAll(async () => {
  db = await createMemoryDatabase();
  app = createTestApp({ db, clock, env: { BRUTEFORCE_MAX_ATTEMPTS: "4" } }).app;
  tenant = await createTenant(app, "otp");
});
afterAll(() => db.close());

const passwordGrant = () =>
  send(app, "POST", "/v1/apps/otp/tokens", {
    body: { grant_type: "password", email: tenant.reader.email, password: PASSWORD },
  });

async function challenge() {
  const body = await expectError(await passwordGrant(), 401, "mfa_required");
  const mfaToken = (body.error as { mfa_token?: string }).mfa_token;
  expect(mfaToken).toMatch(/^ey/);
  return mfaToken as string;
}

const mfaGrant = (mfaToken: string, factor: { otp?: string; recovery_code?: string }) =>
  send(app, "POST", "/v1/apps/otp/tokens", {
    body: { grant_type: "mfa_otp", mfa_token: mfaToken, ...factor },
  });

/** The next 30-second step, so a fresh code exists. */
const nextStep = () => clock.advance(30_000);

describe("two-factor authentication (TOTP)", () => {
  let secret: string;
  let recoveryCodes: string[];

  it("enrolls with a code computed by an independent TOTP implementation", async () => {
    const token = bearer(tenant.reader.accessToken);
    const started = await send(app, "POST", "/v1/users/me/2fa", { headers: token });
    expect(started.status).toBe(201);
    const { data } = await readJson(started);
    secret = data.secret;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const url = new URL(data.otpauth_url);
    expect(url.protocol).toBe("otpauth:");
    expect(url.searchParams.get("secret")).toBe(secret);
    expect(url.searchParams.get("issuer")).toBe("otp");
    expect(data.qr_code_svg).toMatch(/^<svg[\s\S]*<\/svg>$/);

    // Not on until confirmed: the password alone still signs in.
    expect((await passwordGrant()).status).toBe(200);
    await expectError(
      await send(app, "POST", "/v1/users/me/2fa/verify", {
        body: { code: totpCode(secret, new Date(clock.now().getTime() + 600_000)) },
        headers: token,
      }),
      400,
      "validation_error",
    );
    const confirmed = await send(app, "POST", "/v1/users/me/2fa/verify", {
      body: { code: totpCode(secret, clock.now()) },
      headers: token,
    });
    expect(confirmed.status).toBe(200);
    recoveryCodes = (await readJson(confirmed)).data.recovery_codes;
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const code of recoveryCodes) expect(code).toMatch(/^[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{2}$/);

    const me = await readJson(await send(app, "GET", "/v1/users/me", { headers: token }));
    expect(me.data.mfa_enabled).toBe(true);
    expect(JSON.stringify(me)).not.toContain(secret);
    const status = await readJson(await send(app, "GET", "/v1/users/me/2fa", { headers: token }));
    expect(status.data).toEqual({ enabled: true, pending: false, recovery_codes_left: 10 });
  });

  it("asks for the second factor, signs in with a code, and refuses that code a second time", async () => {
    // The code that confirmed enrollment is spent for its step.
    const spent = await mfaGrant(await challenge(), { otp: totpCode(secret, clock.now()) });
    await expectError(spent, 400, "invalid_grant");

    nextStep();
    const code = totpCode(secret, clock.now());
    const mfaToken = await challenge();
    const signedIn = await mfaGrant(mfaToken, { otp: code });
    expect(signedIn.status).toBe(200);
    const tokens = await readJson(signedIn);
    expect(tokens.refresh_token).toMatch(/^rt_/);
    const me = await send(app, "GET", "/v1/users/me", { headers: bearer(tokens.access_token) });
    expect((await readJson(me)).data.id).toBe(tenant.reader.id);

    // The same code again, on a new challenge: refused. The used challenge: refused too.
    await expectError(await mfaGrant(await challenge(), { otp: code }), 400, "invalid_grant");
    nextStep();
    await expectError(
      await mfaGrant(mfaToken, { otp: totpCode(secret, clock.now()) }),
      400,
      "invalid_grant",
    );
    // A challenge is not an access token.
    await expectError(
      await send(app, "GET", "/v1/users/me", { headers: bearer(mfaToken) }),
      401,
      "unauthorized",
    );
  });

  it("recovers with a recovery code, once", async () => {
    const [recovery] = recoveryCodes as [string];
    const recovered = await mfaGrant(await challenge(), {
      recovery_code: recovery.toLowerCase().replaceAll("-", " "),
    });
    expect(recovered.status).toBe(200);
    await expectError(
      await mfaGrant(await challenge(), { recovery_code: recovery }),
      400,
      "invalid_grant",
    );
    const status = await readJson(
      await send(app, "GET", "/v1/users/me/2fa", { headers: bearer(tenant.reader.accessToken) }),
    );
    expect(status.data.recovery_codes_left).toBe(9);
  });

  it("locks out guessing after the brute-force limit", async () => {
    // Earlier tests' failures leave the counting window first.
    clock.advance(120_000);
    const guesses = [];
    // BRUTEFORCE_MAX_ATTEMPTS=4: the fifth failure within the window locks.
    for (let i = 0; i < 5; i++) {
      guesses.push((await mfaGrant(await challenge(), { otp: "000000" })).status);
    }
    expect(guesses).toEqual([400, 400, 400, 400, 400]);
    // Locked: even the right code is refused until the lockout ends.
    await expectError(
      await mfaGrant(await challenge(), { otp: totpCode(secret, clock.now()) }),
      429,
      "rate_limited",
    );
    clock.advance(61_000);
    const after = await mfaGrant(await challenge(), { otp: totpCode(secret, clock.now()) });
    expect(after.status).toBe(200);
  });

  it("turns off only with a valid code, then the password alone signs in", async () => {
    nextStep();
    const token = bearer(tenant.reader.accessToken);
    await expectError(
      await send(app, "DELETE", "/v1/users/me/2fa", { body: { code: "123456" }, headers: token }),
      400,
      "validation_error",
    );
    const off = await send(app, "DELETE", "/v1/users/me/2fa", {
      body: { code: totpCode(secret, clock.now()) },
      headers: token,
    });
    expect(off.status).toBe(204);
    expect((await passwordGrant()).status).toBe(200);
    const status = await readJson(await send(app, "GET", "/v1/users/me/2fa", { headers: token }));
    expect(status.data).toEqual({ enabled: false, pending: false, recovery_codes_left: 0 });
    const audit = await readJson(
      await send(app, "GET", "/v1/audit-logs?limit=100", {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    const actions = audit.data.map((event: { action: string }) => event.action);
    for (const action of [
      "mfa.enabled",
      "auth.login.mfa_required",
      "auth.mfa.failed",
      "mfa.disabled",
    ]) {
      expect(actions).toContain(action);
    }
  });
});
