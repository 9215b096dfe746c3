import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSmtpEmailSender } from "../src/adapters/node/smtp";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { deliver, insertOutbox, readOutbox } from "./support/email";
import { createTenant } from "./support/identity";

const USER = "mailer@acme.test";
const PASSWORD = "p@ss:w/rd";

/**
 * A real SMTP server on loopback that requires authentication with the given mechanism, refuses
 * `reject@` recipients with 550 and `busy@` ones with 451, and keeps every message it accepted,
 * parsed.
 */
async function startSmtpServer(authMethod: "PLAIN" | "LOGIN") {
  const received: Array<{ envelopeTo: string[]; authUser: string | undefined; mail: ParsedMail }> =
    [];
  const logins: string[] = [];
  const server = new SMTPServer({
    authMethods: [authMethod],
    authOptional: false,
    // No STARTTLS here: over plain TCP on loopback, the client must still authenticate.
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push(auth.method);
      if (auth.username === USER && auth.password === PASSWORD) {
        callback(null, { user: auth.username });
      } else {
        callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
      }
    },
    onRcptTo(address, _session, callback) {
      if (address.address.startsWith("reject@")) {
        callback(Object.assign(new Error("No such user here"), { responseCode: 550 }));
      } else if (address.address.startsWith("busy@")) {
        callback(Object.assign(new Error("Mailbox busy, try later"), { responseCode: 451 }));
      } else {
        callback();
      }
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (mail) => {
          received.push({
            envelopeTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            authUser: session.user as string | undefined,
            mail,
          });
          callback();
        },
        (error: Error) => callback(error),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    port,
    received,
    logins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(["PLAIN", "LOGIN"] as const)("SMTP delivery with AUTH %s", (authMethod) => {
  let db: DatabasePort;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let appId: string;
  const clock = createTestClock();
  let app: ReturnType<typeof createTestApp>;

  beforeAll(async () => {
    db = await createMemoryDatabase();
    smtp = await startSmtpServer(authMethod);
    const url = `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`;
    app = createTestApp({
      db,
      clock,
      env: { SMTP_URL: url, EMAIL_FROM: "no-reply@acme.test" },
      ports: { email: createSmtpEmailSender(url) },
    });
    appId = (await createTenant(app.app, "acme")).app.id;
  });
  afterAll(async () => {
    await smtp.close();
    await db.close();
  });

  const due = (values: Record<string, unknown> = {}) =>
    insertOutbox(db, { app_id: appId, next_attempt_at: clock.now(), ...values });

  it("authenticates with the URL's percent-decoded credentials and delivers both parts", async () => {
    const row = await due({
      to_address: "ada@example.test",
      from_name: "Acme, Rockets",
      subject: "Confirm your address",
      text_body: "Open https://heimdall.test/verify?token=abc to confirm.",
      html_body: '<p><a href="https://heimdall.test/verify?token=abc">Confirm</a></p>',
    });
    expect(await deliver(app.services, db, { ids: [row.id] })).toEqual({
      sent: 1,
      failed: 0,
      retried: 0,
    });
    expect(smtp.logins).toContain(authMethod);
    const message = smtp.received.at(-1);
    expect(message?.authUser).toBe(USER);
    expect(message?.envelopeTo).toEqual(["ada@example.test"]);
    expect(message?.mail.from?.value).toEqual([
      { address: "no-reply@acme.test", name: "Acme, Rockets" },
    ]);
    expect(message?.mail.to).toMatchObject({ value: [{ address: "ada@example.test" }] });
    expect(message?.mail.subject).toBe("Confirm your address");
    expect(message?.mail.text?.trim()).toBe(
      "Open https://heimdall.test/verify?token=abc to confirm.",
    );
    expect(message?.mail.html).toContain('<a href="https://heimdall.test/verify?token=abc">');
    expect(await readOutbox(db, row.id)).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("fails a row the server refuses with 550 after one attempt", async () => {
    const before = smtp.received.length;
    const row = await due({ to_address: "reject@example.test" });
    expect(await deliver(app.services, db, { ids: [row.id] })).toEqual({
      sent: 0,
      failed: 1,
      retried: 0,
    });
    const stored = await readOutbox(db, row.id);
    expect(stored).toMatchObject({ status: "failed", attempts: 1, text_body: null });
    expect(stored.last_error).toMatch(/^smtp: .*550/);
    expect(stored.last_error).not.toContain(PASSWORD);
    expect(smtp.received.length).toBe(before);
  });

  it("keeps a row the server defers with 451 pending, due again in a minute", async () => {
    const row = await due({ to_address: "busy@example.test" });
    expect(await deliver(app.services, db, { ids: [row.id] })).toEqual({
      sent: 0,
      failed: 0,
      retried: 1,
    });
    const stored = await readOutbox(db, row.id);
    expect(stored).toMatchObject({
      status: "pending",
      attempts: 1,
      next_attempt_at: new Date(clock.now().getTime() + 60_000),
    });
    expect(stored.last_error).toMatch(/451/);
  });

  it("fails on a wrong password (535) without storing it", async () => {
    const url = `smtp://${encodeURIComponent(USER)}:wrong-secret@127.0.0.1:${smtp.port}`;
    const wrong = createTestApp({ db, clock, ports: { email: createSmtpEmailSender(url) } });
    const row = await due();
    expect(await deliver(wrong.services, db, { ids: [row.id] })).toMatchObject({ failed: 1 });
    const stored = await readOutbox(db, row.id);
    expect(stored.last_error).toMatch(/535/);
    expect(stored.last_error).not.toContain("wrong-secret");
  });
});

describe("SMTP delivery to a server that is not there", () => {
  it("is retryable", async () => {
    const db = await createMemoryDatabase();
    try {
      const clock = createTestClock();
      const email = createSmtpEmailSender("smtp://127.0.0.1:1");
      const { app, services } = createTestApp({ db, clock, ports: { email } });
      const { id: appId } = (await createTenant(app, "nowhere")).app;
      const row = await insertOutbox(db, { app_id: appId, next_attempt_at: clock.now() });
      expect(await deliver(services, db, { ids: [row.id] })).toMatchObject({ retried: 1 });
      expect((await readOutbox(db, row.id)).last_error).toMatch(/^smtp: .*ECONNREFUSED/);
    } finally {
      await db.close();
    }
  });
});
