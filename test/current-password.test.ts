import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, PASSWORD, send, signIn } from "./support/identity";

const MAX = 3;

/**
 * Every request that confirms a signed-in user's current password goes through one check with
 * one lockout (per user and IP): REST and GraphQL, changing the password or the email, erasure.
 * Wrong guesses with a stolen token lock that check, and the user can still sign in.
 */
const paths: Array<{
  name: string;
  during: string;
  attempt: (app: App, token: string, password: string) => Response | Promise<Response>;
  refused: (res: Response) => Promise<void>;
}> = [
  {
    name: "POST /v1/users/me/password",
    during: "password_change",
    attempt: (app, token, password) =>
      send(app, "POST", "/v1/users/me/password", {
        headers: bearer(token),
        body: { current_password: password, new_password: "a brand new password 1" },
      }),
    refused: async (res) => void (await expectError(res, 400, "invalid_request")),
  },
  {
    name: "POST /v1/users/me/email",
    during: "email_change",
    attempt: (app, token, password) =>
      send(app, "POST", "/v1/users/me/email", {
        headers: bearer(token),
        body: { email: `moved-${Math.random().toString(36).slice(2)}@locks.test`, password },
      }),
    refused: async (res) => void (await expectError(res, 400, "invalid_request")),
  },
  {
    name: "DELETE /v1/users/me",
    during: "erasure",
    attempt: (app, token, password) =>
      send(app, "DELETE", "/v1/users/me", { headers: bearer(token), body: { password } }),
    refused: async (res) => void (await expectError(res, 403, "forbidden")),
  },
  ...(["changePassword", "changeEmail"] as const).map((mutation) => ({
    name: `GraphQL ${mutation}`,
    during: mutation === "changePassword" ? "password_change" : "email_change",
    attempt: (app: App, token: string, password: string) =>
      send(app, "POST", "/v1/gql", {
        headers: bearer(token),
        body: {
          query:
            mutation === "changePassword"
              ? 'mutation($p: String!) { changePassword(currentPassword: $p, newPassword: "a brand new password 1") }'
              : 'mutation($p: String!) { changeEmail(email: "gql-moved@locks.test", password: $p) }',
          variables: { p: password },
        },
      }),
    refused: async (res: Response) => {
      const body = await readJson(res);
      expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body)).toBe("INVALID_REQUEST");
    },
  })),
];

describe("confirming the current password", () => {
  let db: DatabasePort;
  let app: App;

  beforeAll(async () => {
    db = await createMemoryDatabase();
    ({ app } = createTestApp({ db, env: { BRUTEFORCE_MAX_ATTEMPTS: String(MAX) } }));
    expect(
      (
        await send(app, "POST", "/v1/apps", {
          headers: adminHeaders,
          body: { name: "locks", display_name: "Locks" },
        })
      ).status,
    ).toBe(201);
  });
  afterAll(() => db.close());

  it.each(paths)("$name: wrong guesses lock the check, not the sign-in", async (path) => {
    const email = `${path.name.replace(/\W+/g, "-").toLowerCase()}@locks.test`;
    const created = await send(app, "POST", "/v1/apps/locks/users", {
      headers: adminHeaders,
      body: { email, password: PASSWORD },
    });
    expect(created.status).toBe(201);
    const { accessToken } = await signIn(app, "locks", email);
    // The lockout allows MAX failures in its window; the next one locks.
    for (let i = 0; i <= MAX; i++)
      await path.refused(await path.attempt(app, accessToken, "wrong"));
    // Locked: the right password is refused too, and nothing changed.
    const locked = await path.attempt(app, accessToken, PASSWORD);
    if (path.name.startsWith("GraphQL")) {
      const body = await readJson(locked);
      expect(body.errors?.[0]?.extensions?.code, JSON.stringify(body)).toBe("RATE_LIMITED");
    } else {
      await expectError(locked, 429, "rate_limited");
    }
    // The user's own sign-in is not locked by what a token holder guessed.
    await signIn(app, "locks", email);
    const audit = await readJson(
      await send(app, "GET", "/v1/apps/locks/audit-logs?action=auth.login.failed&limit=100", {
        headers: adminHeaders,
      }),
    );
    const userId = (await readJson(created)).data.id;
    const failures = audit.data.filter(
      (event: { target_id: string; metadata: { during?: string } }) =>
        event.target_id === userId && event.metadata.during === path.during,
    );
    expect(failures).toHaveLength(MAX + 1);
  });

  it("is the only check of a password outside sign-in (walked in the source)", () => {
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
      });
    const verifying = files("src")
      .filter((path) => !path.startsWith("src/adapters/"))
      .filter((path) => readFileSync(path, "utf8").includes("passwords.verify("));
    expect(verifying.sort()).toEqual([
      "src/services/current-password.ts",
      "src/services/sign-in.ts",
    ]);
  });
});
