import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, readJson } from "./support/http";
import { type RunningServer, startNodeServer } from "./support/node-server";

const ADMIN_KEY = "hk_admin_smtp_flow_0123456789abcdefghij";
const admin = { Authorization: `Bearer ${ADMIN_KEY}`, "Content-Type": "application/json" };

/**
 * The whole self-service loop as a user lives it, against `npm start`'s entry over real HTTP,
 * with mail going out over SMTP to a real SMTP server on loopback that requires authentication:
 * every link and code the user follows is read from a message received and parsed over SMTP.
 */
describe("account self-service over SMTP and real HTTP", { timeout: 180_000 }, () => {
  const received: ParsedMail[] = [];
  const waiters: Array<() => void> = [];
  let smtp: SMTPServer;
  let server: RunningServer;
  let dataDir: string;

  beforeAll(async () => {
    smtp = new SMTPServer({
      authOptional: false,
      // Plain TCP on loopback; the client must still authenticate.
      disabledCommands: ["STARTTLS"],
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, callback) {
        if (auth.username === "heimdall" && auth.password === "s3cret pass") {
          callback(null, { user: auth.username });
        } else callback(new Error("Invalid username or password"));
      },
      onData(stream, _session, callback) {
        simpleParser(stream)
          .then((mail) => {
            received.push(mail);
            for (const wake of waiters.splice(0)) wake();
            callback();
          })
          .catch(callback);
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
    const { port } = smtp.server.address() as AddressInfo;
    dataDir = await mkdtemp(join(tmpdir(), "heimdall-smtp-"));
    server = await startNodeServer({
      DATA_DIR: dataDir,
      ADMIN_API_KEY: ADMIN_KEY,
      SMTP_URL: `smtp://heimdall:${encodeURIComponent("s3cret pass")}@127.0.0.1:${port}`,
      EMAIL_FROM: "accounts@heimdall.test",
      PASSWORD_HASH_MEMORY_KIB: "1024",
      PASSWORD_HASH_ITERATIONS: "1",
      RATE_LIMIT_ENABLED: "false",
    });
  });

  afterAll(async () => {
    await server?.stop();
    await new Promise<void>((resolve) => smtp?.close(() => resolve()));
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The next message to `to` whose subject matches, waiting for it to arrive over SMTP. */
  async function mailTo(to: string, subject: RegExp, after: number): Promise<ParsedMail> {
    for (;;) {
      const found = received
        .slice(after)
        .find(
          (mail) =>
            mail.to && JSON.stringify(mail.to).includes(to) && subject.test(mail.subject ?? ""),
        );
      if (found) return found;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  }
  const tokenIn = (mail: ParsedMail, prefix: string) => {
    const match = new RegExp(`${prefix}[A-Za-z0-9_-]{16,}`).exec(mail.text ?? "");
    if (!match) throw new Error(`no ${prefix} token in ${mail.text}`);
    return match[0];
  };
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
  const passwordGrant = (email: string, password: string) =>
    post("/v1/apps/smtp-flow/tokens", { grant_type: "password", email, password });

  it("signs up, verifies, signs in, forgets, resets, and the old sessions are dead", async () => {
    expect(
      (await post("/v1/apps", { name: "smtp-flow", display_name: "SMTP Flow" }, admin)).status,
    ).toBe(201);
    const settings = await fetch(`${server.url}/v1/apps/smtp-flow/settings`, {
      method: "PATCH",
      headers: admin,
      body: JSON.stringify({
        signup: "open",
        require_email_verification: true,
        email_sender_name: "Flow Accounts",
      }),
    });
    expect(settings.status).toBe(200);

    const email = "lena@flow.test";
    let seen = received.length;
    const signup = await post("/v1/apps/smtp-flow/signup", {
      email,
      password: "first password 1",
      display_name: "Lena",
    });
    expect(signup.status).toBe(202);
    const verification = await mailTo(email, /confirm/i, seen);
    expect(verification.from?.value[0]).toMatchObject({
      address: "accounts@heimdall.test",
      name: "Flow Accounts",
    });
    expect(verification.html).toBeTruthy();
    expect(verification.text).toContain("/v1/apps/smtp-flow/pages/verify-email?token=emv_");

    await expectError(await passwordGrant(email, "first password 1"), 403, "email_not_verified");
    const verified = await post("/v1/apps/smtp-flow/email/verify", {
      token: tokenIn(verification, "emv_"),
    });
    expect(verified.status).toBe(200);
    expect((await readJson(verified)).data).toMatchObject({ email, email_verified: true });

    const first = await passwordGrant(email, "first password 1");
    expect(first.status).toBe(200);
    const session = await readJson(first);

    seen = received.length;
    expect((await post("/v1/apps/smtp-flow/password/forgot", { email })).status).toBe(202);
    const reset = await mailTo(email, /reset/i, seen);
    const done = await post("/v1/apps/smtp-flow/password/reset", {
      token: tokenIn(reset, "pwr_"),
      password: "second password 2",
    });
    expect(done.status).toBe(200);

    await expectError(await passwordGrant(email, "first password 1"), 400, "invalid_grant");
    expect((await passwordGrant(email, "second password 2")).status).toBe(200);
    const refresh = await post("/v1/apps/smtp-flow/tokens", {
      grant_type: "refresh_token",
      refresh_token: session.refresh_token,
    });
    await expectError(refresh, 400, "invalid_grant");
    const me = await fetch(`${server.url}/v1/users/me`, {
      headers: { Authorization: `Bearer ${session.access_token}` },
    });
    expect(me.status).toBe(401);
  });
});
