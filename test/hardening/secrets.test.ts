import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabasePort } from "../../src/ports";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  TEST_ADMIN_KEY,
} from "../support/app";
import { readJson } from "../support/http";
import { bearer, send } from "../support/identity";
import { totpCode } from "../support/totp";

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

describe("secrets never leave", () => {
  it("logs none of the passwords, tokens, keys and secrets of a full flow, and every answer has the secure headers", async () => {
    const clock = createTestClock();
    const { app, logs } = createTestApp({ db, clock });
    const responses: Response[] = [];
    const call = async (...args: Parameters<typeof send>) => {
      const res = await send(...args);
      responses.push(res.clone());
      return res;
    };
    const secrets: string[] = [TEST_ADMIN_KEY];
    const password = "a-very-secret-passphrase-42";
    secrets.push(password);

    await call(app, "POST", "/v1/apps", {
      body: { name: "vault", display_name: "Vault" },
      headers: adminHeaders,
    });
    const user = (
      await readJson(
        await call(app, "POST", "/v1/apps/vault/users", {
          body: { email: "kim@vault.test", password, role: "admin" },
          headers: adminHeaders,
        }),
      )
    ).data;
    const login = await readJson(
      await call(app, "POST", "/v1/apps/vault/tokens", {
        body: { grant_type: "password", email: user.email, password },
      }),
    );
    secrets.push(login.access_token, login.refresh_token);
    const refreshed = await readJson(
      await call(app, "POST", "/v1/apps/vault/tokens/refresh", {
        body: { refresh_token: login.refresh_token },
      }),
    );
    secrets.push(refreshed.access_token, refreshed.refresh_token);
    const token = bearer(refreshed.access_token);

    const key = (
      await readJson(
        await call(app, "POST", "/v1/api-keys", {
          body: { name: "ci", role: "api-read-only" },
          headers: token,
        }),
      )
    ).data.key;
    secrets.push(key);
    expect(
      (await call(app, "GET", "/v1/gps/current", { headers: { "X-API-Key": key } })).status,
    ).toBe(200);

    const device = (
      await readJson(
        await call(app, "POST", "/v1/devices", { body: { name: "phone" }, headers: token }),
      )
    ).data;
    secrets.push(device.secret);
    const osmand = await call(
      app,
      "GET",
      `/v1/gps/osmand?key=${device.secret}&id=phone&lat=52.52&lon=13.4&timestamp=${Math.floor(clock.now().getTime() / 1000)}`,
    );
    expect(osmand.status).toBe(200);

    const enrolled = (
      await readJson(await call(app, "POST", "/v1/users/me/2fa", { headers: token }))
    ).data;
    secrets.push(enrolled.secret);
    const verified = (
      await readJson(
        await call(app, "POST", "/v1/users/me/2fa/verify", {
          body: { code: totpCode(enrolled.secret, clock.now()) },
          headers: token,
        }),
      )
    ).data;
    secrets.push(...verified.recovery_codes);
    const challenge = await readJson(
      await call(app, "POST", "/v1/apps/vault/tokens", {
        body: { grant_type: "password", email: user.email, password },
      }),
    );
    secrets.push(challenge.error.mfa_token);
    clock.advance(30_000);
    const second = await readJson(
      await call(app, "POST", "/v1/apps/vault/tokens", {
        body: {
          grant_type: "mfa_otp",
          mfa_token: challenge.error.mfa_token,
          otp: totpCode(enrolled.secret, clock.now()),
        },
      }),
    );
    expect(second.access_token).toBeTruthy();
    secrets.push(second.access_token, second.refresh_token);
    // A failed sign-in too: its password must not be logged either.
    const wrong = "wrong-password-that-must-not-leak";
    secrets.push(wrong);
    await call(app, "POST", "/v1/apps/vault/tokens", {
      body: { grant_type: "password", email: user.email, password: wrong },
    });

    const logged = JSON.stringify(logs);
    expect(logs.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(typeof secret).toBe("string");
      expect(secret.length).toBeGreaterThan(5);
      expect(logged, `a secret (${secret.slice(0, 6)}…) is in the logs`).not.toContain(secret);
    }
    for (const res of responses) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBeTruthy();
      expect(res.headers.get("strict-transport-security")).toBeTruthy();
    }
  });

  it("answers CORS only for the configured origins", async () => {
    const { app } = createTestApp({ db, env: { CORS_ORIGINS: "https://console.example" } });
    const preflight = (origin: string) =>
      app.request("/v1/users", {
        method: "OPTIONS",
        headers: { Origin: origin, "Access-Control-Request-Method": "GET" },
      });
    const allowed = await preflight("https://console.example");
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://console.example");
    const other = await preflight("https://evil.example");
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });
});
