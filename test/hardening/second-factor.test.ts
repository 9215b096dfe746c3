import { readdirSync, readFileSync } from "node:fs";
import { join, sep } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app";
import type { DatabasePort } from "../../src/ports";
import { SECOND_FACTOR_PATHS, type SecondFactorPath } from "../../src/services/mfa";
import { adminHeaders, createTestApp, createTestClock } from "../support/app";
import { databaseBackends } from "../support/backends";
import { readJson } from "../support/http";
import { bearer, createTenant, PASSWORD, send, signIn } from "../support/identity";
import { totpCode } from "../support/totp";

/**
 * Every path that checks a second-factor code goes through the one routine and its one lockout
 * (`mfa:<user>` and `ip:<ip>`): for each path of `SECOND_FACTOR_PATHS`, wrong codes past the
 * limit lock, after which the right code is refused too (from that IP, for that user from any
 * IP, and for another user from that IP), each failure and the lock are audited, and the lock
 * ends after the lockout. Which paths exist is read from the code, three ways: the registry (a
 * driver per entry, or this file does not compile), the served OpenAPI document and the app's
 * other routes (an operation taking a code-like field must be a driver's or say why not), and
 * the sources (every call of the routine names a registered path; nothing else reads TOTP
 * secrets or recovery codes).
 */

const MAX_ATTEMPTS = 3;
const LOCKOUT_MS = 120_000;
const backends = databaseBackends("second-factor lockout walk");

interface Subject {
  id: string;
  email: string;
  accessToken: string;
  secret: string;
  recoveryCodes: string[];
}
type Factor = { otp: string } | { recovery_code: string };

interface Driver {
  /** The route the path is served on, as `METHOD /path` of the document or of `app.routes`. */
  route: string;
  /** Whether 2FA is on (or only enrolled, for confirming the enrollment). */
  state: "enabled" | "enrolling";
  /** Whether the path takes a recovery code instead of a TOTP code. */
  recovery: boolean;
  attempt(user: Subject, factor: Factor, ip: string): Response | Promise<Response>;
  /** What the path answers a wrong code, and the right one. */
  wrong: number;
  right: number[];
}

/** Operations that take a field named like a code but check no second factor, and why. */
const notSecondFactor: Record<string, string> = {};
/** The text between an opening parenthesis (just before `start`) and its closing one. */
function argumentsAt(text: string, start: number) {
  let depth = 1;
  let end = start;
  while (end < text.length && depth > 0) {
    const char = text[end];
    if (char === "(") depth += 1;
    if (char === ")") depth -= 1;
    end += 1;
  }
  return text.slice(start, end - 1);
}

const codeField = /^(otp|code|recovery_code|totp\w*|mfa\w*)$/;

describe.each(backends)("every second-factor path on $name", (backend) => {
  let dispose: () => Promise<void>;
  let db: DatabasePort;
  let app: App;
  const clock = createTestClock();
  const appName = "factors";
  let clientId = "";
  let users = 0;

  const ipHeader = (ip: string) => ({ "X-Test-Client-Ip": ip });
  const form = (fields: Record<string, string>, ip: string) =>
    app.request(`/v1/apps/${appName}/oauth/authorize`, {
      method: "POST",
      headers: ipHeader(ip),
      body: new URLSearchParams(fields),
    });

  const drivers = {
    token_endpoint: {
      route: "POST /v1/apps/{app_name}/tokens",
      state: "enabled",
      recovery: true,
      wrong: 400,
      right: [200],
      async attempt(user, factor, ip) {
        // The challenge comes from elsewhere: what is under test is the mfa_otp grant's check.
        const challenge = await send(app, "POST", `/v1/apps/${appName}/tokens`, {
          body: { grant_type: "password", email: user.email, password: PASSWORD },
          headers: ipHeader("192.0.2.250"),
        });
        expect(challenge.status).toBe(401);
        const mfaToken = (await readJson(challenge)).error.mfa_token;
        return send(app, "POST", `/v1/apps/${appName}/tokens`, {
          body: { grant_type: "mfa_otp", mfa_token: mfaToken, ...factor },
          headers: ipHeader(ip),
        });
      },
    },
    oauth_authorize: {
      route: "POST /v1/apps/{app_name}/oauth/authorize",
      state: "enabled",
      recovery: false,
      wrong: 401,
      right: [200, 302],
      async attempt(user, factor, ip) {
        const query = new URLSearchParams({
          response_type: "code",
          client_id: clientId,
          redirect_uri: "https://client.example/cb",
          scope: "openid",
          code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
          code_challenge_method: "S256",
        });
        const page = await app.request(`/v1/apps/${appName}/oauth/authorize?${query}`);
        expect(page.status).toBe(200);
        const tx = /name="tx" value="([^"]+)"/.exec(await page.text())?.[1] ?? "";
        const otp = "otp" in factor ? factor.otp : "";
        return form({ tx, email: user.email, password: PASSWORD, otp }, ip);
      },
    },
    mfa_verify: {
      route: "POST /v1/users/me/2fa/verify",
      state: "enrolling",
      recovery: false,
      wrong: 400,
      right: [200],
      attempt: (user, factor, ip) =>
        send(app, "POST", "/v1/users/me/2fa/verify", {
          body: { code: "otp" in factor ? factor.otp : factor.recovery_code },
          headers: { ...bearer(user.accessToken), ...ipHeader(ip) },
        }),
    },
    mfa_disable: {
      route: "DELETE /v1/users/me/2fa",
      state: "enabled",
      recovery: true,
      wrong: 400,
      right: [204],
      attempt: (user, factor, ip) =>
        send(app, "DELETE", "/v1/users/me/2fa", {
          body: "otp" in factor ? { code: factor.otp } : factor,
          headers: { ...bearer(user.accessToken), ...ipHeader(ip) },
        }),
    },
  } satisfies Record<SecondFactorPath, Driver>;

  /** A new user of the app, signed in, with 2FA on or only enrolled. */
  async function subject(state: Driver["state"]): Promise<Subject> {
    users += 1;
    const email = `user${users}@${appName}.test`;
    const made = await send(app, "POST", `/v1/apps/${appName}/users`, {
      body: { email, password: PASSWORD },
      headers: adminHeaders,
    });
    expect(made.status).toBe(201);
    const { id } = (await readJson(made)).data;
    const { accessToken } = await signIn(app, appName, email);
    const started = await send(app, "POST", "/v1/users/me/2fa", { headers: bearer(accessToken) });
    expect(started.status).toBe(201);
    const { secret } = (await readJson(started)).data;
    let recoveryCodes: string[] = [];
    if (state === "enabled") {
      const confirmed = await send(app, "POST", "/v1/users/me/2fa/verify", {
        body: { code: totpCode(secret, clock.now()) },
        headers: bearer(accessToken),
      });
      expect(confirmed.status).toBe(200);
      recoveryCodes = (await readJson(confirmed)).data.recovery_codes;
      // The confirming code is spent for its step; the next step has a fresh one.
      clock.advance(30_000);
    }
    return { id, email, accessToken, secret, recoveryCodes };
  }

  const right = (user: Subject): Factor => ({ otp: totpCode(user.secret, clock.now()) });
  /** A code that no step within the accepted skew has. */
  function wrongOtp(user: Subject) {
    const t = clock.now().getTime();
    const valid = [-30_000, 0, 30_000].map((d) => totpCode(user.secret, new Date(t + d)));
    let code = 0;
    while (valid.includes(String(code).padStart(6, "0"))) code += 1;
    return String(code).padStart(6, "0");
  }

  async function auditOf(action: string, userId: string) {
    const res = await send(
      app,
      "GET",
      `/v1/apps/${appName}/audit-logs?action=${action}&target_id=${userId}&limit=100`,
      { headers: adminHeaders },
    );
    expect(res.status).toBe(200);
    return (await readJson(res)).data as Array<{
      ip_address: string | null;
      metadata: Record<string, unknown>;
    }>;
  }

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    app = createTestApp({
      db,
      clock,
      env: {
        BRUTEFORCE_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        BRUTEFORCE_WINDOW: "1m",
        BRUTEFORCE_LOCKOUT: "2m",
      },
    }).app;
    await createTenant(app, appName);
    const client = await send(app, "POST", `/v1/apps/${appName}/oauth/clients`, {
      body: {
        name: "Factors client",
        type: "public",
        redirect_uris: ["https://client.example/cb"],
        scopes: ["openid"],
      },
      headers: adminHeaders,
    });
    expect(client.status, await client.clone().text()).toBe(201);
    clientId = (await readJson(client)).data.client_id;
  });
  afterAll(() => dispose());

  it("has a driver for every registered path and classifies every route taking a code", async () => {
    expect(Object.keys(drivers).sort()).toEqual([...SECOND_FACTOR_PATHS].sort());
    const doc = await readJson(await send(app, "GET", "/v1/openapi.json"));
    const schemas = doc.components.schemas as Record<string, { properties?: object }>;
    const documented = new Set<string>();
    const takingCodes: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
      for (const [method, operation] of Object.entries(item as Record<string, unknown>)) {
        const route = `${method.toUpperCase()} ${path}`;
        documented.add(route);
        const content = (operation as { requestBody?: { content?: object } }).requestBody?.content;
        for (const media of Object.values(content ?? {}) as Array<{ schema?: object }>) {
          const schema = media.schema as { $ref?: string; properties?: object } | undefined;
          const resolved = schema?.$ref ? schemas[schema.$ref.split("/").pop() ?? ""] : schema;
          const props = Object.keys(resolved?.properties ?? {});
          if (props.some((prop) => codeField.test(prop))) takingCodes.push(route);
        }
      }
    }
    // `app.routes` spells parameters `:name`; the document `{name}`.
    const served = new Set(
      app.routes.map((route) => `${route.method} ${route.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    const driven = new Set(Object.values(drivers).map((driver) => driver.route));
    for (const route of driven) {
      expect(documented.has(route) || served.has(route), `no such route: ${route}`).toBe(true);
    }
    // The documented paths are found by their fields, so the walk would find a new one too.
    for (const route of driven) if (documented.has(route)) expect(takingCodes).toContain(route);
    for (const route of new Set(takingCodes)) {
      expect(driven.has(route) || route in notSecondFactor, `unclassified: ${route}`).toBe(true);
    }
    // The sign-in page is outside the document: it takes `otp` in its form.
    expect(documented.has(drivers.oauth_authorize.route)).toBe(false);
    expect(served.has(drivers.oauth_authorize.route)).toBe(true);
  });

  it("calls the one routine with a registered path wherever a code is checked", () => {
    const root = join(__dirname, "../../src");
    const files = (readdirSync(root, { recursive: true }) as string[])
      .filter((file) => file.endsWith(".ts"))
      .map((file) => ({ file, text: readFileSync(join(root, file), "utf8") }));
    const vias = new Set<string>();
    for (const { file, text } of files) {
      for (const call of text.matchAll(/(?<!function )checkSecondFactor\(/g)) {
        // Each call names its path with a literal, so the set of paths is known here.
        const args = argumentsAt(text, call.index + call[0].length);
        const via = /,\s*"(\w+)",?\s*$/.exec(args)?.[1];
        expect(via, `${file}: ${args}`).toBeDefined();
        vias.add(via ?? "");
      }
      if (file === join("services", "mfa.ts") || file.startsWith(`db${sep}`)) continue;
      // Only the routine's module checks TOTP codes, spends steps or spends recovery codes.
      expect(text, file).not.toMatch(/from "otpauth"|\brecoveryCodes\b|set\(\{[^}]*totp_last_step/);
      expect(text, file).not.toMatch(/spendTotp|spendRecoveryCode|spendSecondFactor/);
    }
    expect([...vias].sort()).toEqual([...SECOND_FACTOR_PATHS].sort());
  });

  describe.each(SECOND_FACTOR_PATHS)("%s", (path) => {
    it("locks the user and the IP after the limit, refuses the right code, audits, then lets in", async () => {
      const driver: Driver = drivers[path];
      const [user, other] = [await subject(driver.state), await subject(driver.state)] as const;
      const ip = `198.51.100.${10 + SECOND_FACTOR_PATHS.indexOf(path)}`;
      const elsewhere = `203.0.113.${10 + SECOND_FACTOR_PATHS.indexOf(path)}`;

      // The limit, then one more: each a plain wrong-code answer; the last one locks.
      for (let i = 0; i <= MAX_ATTEMPTS; i++) {
        const factor: Factor =
          driver.recovery && i % 2 === 1
            ? { recovery_code: "ZZZZ-ZZZZ-ZZ" }
            : { otp: wrongOtp(user) };
        const res = await driver.attempt(user, factor, ip);
        expect(res.status, `attempt ${i + 1}: ${await res.clone().text()}`).toBe(driver.wrong);
      }
      // Locked: the right code is refused, from this IP, for this user from anywhere, and for
      // another user from this IP.
      for (const [who, from] of [
        [user, ip],
        [user, elsewhere],
        [other, ip],
      ] as const) {
        const res = await driver.attempt(who, right(who), from);
        expect(res.status, `${who.email} from ${from}`).toBe(429);
        expect(res.headers.get("retry-after")).toBe(String(LOCKOUT_MS / 1000));
      }

      const failures = await auditOf("auth.mfa.failed", user.id);
      expect(failures).toHaveLength(MAX_ATTEMPTS + 1);
      for (const failure of failures) {
        expect(failure.metadata.via).toBe(path);
        expect(failure.ip_address).toBe(ip);
      }
      if (driver.recovery) {
        expect(failures.map((f) => f.metadata.factor).sort()).toContain("recovery_code");
      }
      const lockouts = await auditOf("auth.lockout", user.id);
      expect(lockouts).toHaveLength(1);
      expect(lockouts[0]?.metadata.locked).toEqual([`mfa:${user.id}`, `ip:${ip}`]);
      // Refusals while locked are not failures of their own.
      expect(await auditOf("auth.mfa.failed", other.id)).toHaveLength(0);

      clock.advance(LOCKOUT_MS + 1_000);
      const after = await driver.attempt(user, right(user), ip);
      expect(driver.right, await after.clone().text()).toContain(after.status);
      if (driver.recovery) {
        const recovered = await driver.attempt(
          other,
          { recovery_code: other.recoveryCodes[0] ?? "" },
          elsewhere,
        );
        expect(driver.right).toContain(recovered.status);
      }
    });
  });
});
