import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureContextOf, scrubText } from "../../src/adapters/sentry/scrub";
import { randomSecret, SECRET_PREFIXES } from "../../src/lib/crypto";
import { redactSecrets } from "../../src/lib/redact";
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

    // Invites: the token is in the path, accepted once after a failed try (too short a password).
    const invite = (
      await readJson(
        await call(app, "POST", "/v1/apps/vault/invites", {
          body: { email: "lee@vault.test", role: "admin" },
          headers: adminHeaders,
        }),
      )
    ).data;
    secrets.push(invite.token);
    const failedAccept = await call(app, "POST", `/v1/invites/${invite.token}/accept`, {
      body: { password: "short" },
    });
    expect(failedAccept.status).toBe(400);
    const accepted = await readJson(
      await call(app, "POST", `/v1/invites/${invite.token}/accept`, {
        body: { password: "another-long-passphrase-77" },
      }),
    );
    expect(accepted.access_token).toBeTruthy();
    secrets.push(accepted.access_token, accepted.refresh_token);
    // A used-up token in the path, and one that was never issued but has the form of one.
    await call(app, "POST", `/v1/invites/${invite.token}/accept`, {
      body: { password: "another-long-passphrase-77" },
    });

    // Service credentials, their secret through Basic, their client_credentials token.
    const credential = (
      await readJson(
        await call(app, "POST", "/v1/apps/vault/credentials", {
          body: { name: "billing", permissions: ["users:read"] },
          headers: adminHeaders,
        }),
      )
    ).data;
    secrets.push(credential.client_secret);
    const service = await readJson(
      await call(app, "POST", "/v1/apps/vault/tokens", {
        body: { grant_type: "client_credentials" },
        headers: {
          Authorization: `Basic ${btoa(`${credential.client_id}:${credential.client_secret}`)}`,
        },
      }),
    );
    secrets.push(service.access_token);

    // An OAuth client's secret.
    const client = (
      await readJson(
        await call(app, "POST", "/v1/oauth/clients", {
          body: {
            name: "Dashboard",
            type: "confidential",
            redirect_uris: ["https://dash.vault.test/cb"],
            scopes: ["openid"],
          },
          headers: token,
        }),
      )
    ).data;
    secrets.push(client.client_secret);

    // A live-socket ticket, and secrets carried in URLs the way clients carry them.
    const ticket = (await readJson(await call(app, "POST", "/v1/ws/ticket", { headers: token })))
      .data.ticket;
    secrets.push(ticket);
    const rotated = (
      await readJson(await call(app, "POST", `/v1/devices/${device.id}/secret`, { headers: token }))
    ).data.secret;
    secrets.push(rotated);
    for (const url of [
      `/v1/gps/osmand?access_token=${rotated}&lat=1&lon=2&timestamp=1`,
      `/v1/gps/overland?access_token=${rotated}`,
      `/v1/gps/nope/${rotated}?ticket=${ticket}`,
      `/v1/users/me?token=${refreshed.refresh_token}&code=${enrolled.secret}`,
      `/v1/apps/vault/tokens/${invite.token}`,
      `/v1/invites/${key}/accept`,
      `/v1/devices/${login.access_token}`,
    ]) {
      await call(app, "POST", url, { body: {} });
      await call(app, "GET", url);
    }

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

  it("redacts every kind of issued secret, in paths, queries and messages, for logs and Sentry", () => {
    const kinds = [
      ...SECRET_PREFIXES.map((prefix) => randomSecret(prefix)),
      // Access, ID, MFA and socket-ticket tokens are JWTs.
      "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    ];
    for (const secret of kinds) {
      const texts = [
        `/v1/invites/${secret}/accept`,
        `https://heimdall.test/v1/gps/osmand?id=1&key=${secret}`,
        `Failed to handle ${secret}.`,
        JSON.stringify({ path: `/v1/devices/${secret}`, status: 404 }),
      ];
      for (const text of texts) {
        expect(redactSecrets(text)).not.toContain(secret);
        expect(scrubText(text)).not.toContain(secret);
      }
      const context = captureContextOf({
        request: new Request(`https://heimdall.test/v1/invites/${secret}/accept?ticket=${secret}`),
        status: 500,
      });
      expect(JSON.stringify(context)).not.toContain(secret);
    }
    for (const name of ["key", "access_token", "ticket", "token", "code", "client_secret", "otp"]) {
      expect(redactSecrets(`/v1/x?${name}=hunter2&id=7`)).toBe(`/v1/x?${name}=[Filtered]&id=7`);
    }
    // Ids and ordinary words stay readable.
    const plain = "/v1/devices/dev_01JABCDEFGHJKMNPQRSTVWXYZ0/track?sort_order=desc";
    expect(redactSecrets(plain)).toBe(plain);
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
