import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readJson } from "./support/http";
import { createTenant, PASSWORD, send, type Tenant } from "./support/identity";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
const clock = createTestClock();

beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app } = createTestApp({
    db,
    clock,
    env: { BRUTEFORCE_MAX_ATTEMPTS: "3", BRUTEFORCE_WINDOW: "1m", BRUTEFORCE_LOCKOUT: "2m" },
  }));
  tenant = await createTenant(app, "victor");
});
afterAll(() => db.close());

const login = (email: string, password: string, ip = "198.51.100.7") =>
  send(app, "POST", "/v1/apps/victor/tokens", {
    body: { grant_type: "password", email, password },
    headers: { "X-Test-Client-Ip": ip },
  });

describe("brute-force protection", () => {
  it("locks an account after too many failures, answers the same with the right password, and audits it", async () => {
    const email = tenant.reader.email;
    for (let i = 0; i < 3; i++)
      await expectError(
        await login(email, "wrong password!", `203.0.113.${i}`),
        400,
        "invalid_grant",
      );
    // The fourth failure goes over the limit and locks the account (from any IP).
    await expectError(await login(email, "wrong password!", "203.0.113.50"), 400, "invalid_grant");
    const wrong = await login(email, "wrong password!", "203.0.113.51");
    const right = await login(email, PASSWORD, "203.0.113.52");
    const wrongBody = await expectError(wrong, 429, "rate_limited");
    const rightBody = await expectError(right, 429, "rate_limited");
    expect(rightBody.error.message).toBe(wrongBody.error.message);
    expect(right.headers.get("retry-after")).toBe("120");

    const audit = await readJson(
      await send(app, "GET", "/v1/apps/victor/audit-logs?action=auth.lockout", {
        headers: adminHeaders,
      }),
    );
    expect(audit.data).toHaveLength(1);
    expect(audit.data[0].metadata.locked).toContain(`acct:${tenant.reader.id}`);

    // Other accounts are untouched; the lock ends after the lockout.
    expect((await login(tenant.admin.email, PASSWORD, "203.0.113.60")).status).toBe(200);
    clock.advance(121_000);
    expect((await login(email, PASSWORD, "203.0.113.61")).status).toBe(200);
  });

  it("keys the lock by the account, so no spelling of its email escapes it", async () => {
    const email = tenant.admin.email;
    // JavaScript lowercases "İ" to "i̇"; the lookup's SQL lower() to "i": the same account.
    const spelled = email.replace("victor", "vİctor");
    expect(spelled.toLowerCase()).not.toBe(email);
    clock.advance(121_000);
    for (let i = 0; i < 4; i++)
      await login(spelled.toUpperCase(), "wrong password!", `10.1.0.${i}`);
    await expectError(await login(email, PASSWORD, "10.1.0.10"), 429, "rate_limited");
    await expectError(await login(spelled, PASSWORD, "10.1.0.11"), 429, "rate_limited");
    clock.advance(121_000);
    expect((await login(spelled, PASSWORD, "10.1.0.12")).status).toBe(200);
  });

  it("locks an IP that tries many accounts, unknown ones included", async () => {
    const ip = "192.0.2.99";
    for (let i = 0; i < 4; i++) await login(`nobody${i}@victor.test`, "whatever pass", ip);
    await expectError(await login(tenant.admin.email, PASSWORD, ip), 429, "rate_limited");
    expect((await login(tenant.admin.email, PASSWORD, "192.0.2.100")).status).toBe(200);
  });

  it("counts guessed invite tokens against the IP", async () => {
    const ip = "192.0.2.200";
    const accept = (token: string) =>
      send(app, "POST", `/v1/invites/${token}/accept`, {
        body: { password: PASSWORD },
        headers: { "X-Test-Client-Ip": ip },
      });
    for (let i = 0; i < 4; i++)
      await expectError(await accept(`inv_tok_guess${i}`), 404, "not_found");
    const invite = await readJson(
      await send(app, "POST", "/v1/apps/victor/invites", {
        body: { email: "new@victor.test" },
        headers: adminHeaders,
      }),
    );
    await expectError(await accept(invite.data.token), 429, "rate_limited");
  });
});
