import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates, setDefaultCACertificates } from "node:tls";
import { type ParsedMail, simpleParser } from "mailparser";
import pg from "pg";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSmtpEmailSender } from "../src/adapters/node/smtp";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { deliver, insertOutbox, readOutbox } from "./support/email";
import { createTenant } from "./support/identity";
import { startNodeServer } from "./support/node-server";
import { createTestDatabase } from "./support/postgres";
import { announceSkip, services } from "./support/services";
import { until } from "./support/wait";

const USER = "mailer@acme.test";
const PASSWORD = "p@ss:w/rd";

/**
 * A real SMTP server on loopback that requires authentication with the given mechanism, refuses
 * `reject@` recipients with 550 and `busy@` ones with 451, and keeps every message it accepted,
 * parsed.
 */
async function startSmtpServer(
  authMethod: "PLAIN" | "LOGIN",
  tls?: { key: string; cert: string; implicit: boolean },
) {
  const received: Array<{
    envelopeTo: string[];
    authUser: string | undefined;
    secure: boolean;
    mail: ParsedMail;
  }> = [];
  const logins: string[] = [];
  const server = new SMTPServer({
    authMethods: [authMethod],
    authOptional: false,
    ...(tls
      ? // With a certificate, authentication only after TLS: implicit, or STARTTLS.
        { key: tls.key, cert: tls.cert, secure: tls.implicit, allowInsecureAuth: false }
      : // Without one, no STARTTLS: over plain TCP on loopback the client must still authenticate.
        { disabledCommands: ["STARTTLS"], allowInsecureAuth: true }),
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
            secure: session.secure,
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
    expect(message?.secure).toBe(false);
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

  it("keeps the mail for later on a wrong password (535), without storing it", async () => {
    const url = `smtp://${encodeURIComponent(USER)}:wrong-secret@127.0.0.1:${smtp.port}`;
    const wrong = createTestApp({ db, clock, ports: { email: createSmtpEmailSender(url) } });
    const row = await due();
    expect(await deliver(wrong.services, db, { ids: [row.id] })).toMatchObject({ retried: 1 });
    const stored = await readOutbox(db, row.id);
    expect(stored).toMatchObject({ status: "pending", attempts: 1 });
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

/**
 * A certificate for 127.0.0.1 that this process's TLS trusts from now on, as a real server's
 * would be: the sender is given no TLS options of its own.
 */
function trustedLoopbackCertificate() {
  const dir = mkdtempSync(join(tmpdir(), "heimdall-smtp-tls-"));
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
    ],
    { stdio: "ignore" },
  );
  const key = readFileSync(join(dir, "key.pem"), "utf8");
  const cert = readFileSync(join(dir, "cert.pem"), "utf8");
  rmSync(dir, { recursive: true, force: true });
  setDefaultCACertificates([...rootCertificates, cert]);
  return { key, cert };
}

describe("SMTP delivery over TLS", () => {
  let db: DatabasePort;
  let appId: string;
  let certificate: { key: string; cert: string };
  const clock = createTestClock();

  beforeAll(async () => {
    certificate = trustedLoopbackCertificate();
    db = await createMemoryDatabase();
    appId = (await createTenant(createTestApp({ db, clock }).app, "tls")).app.id;
  });
  afterAll(() => db.close());

  it.each([
    ["smtps:// (TLS from the first byte)", "smtps", true],
    ["smtp:// upgraded with STARTTLS", "smtp", false],
  ] as const)("delivers over %s, and only then authenticates", async (_label, scheme, implicit) => {
    const smtp = await startSmtpServer("PLAIN", { ...certificate, implicit });
    try {
      const url = `${scheme}://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`;
      const { services: tlsServices } = createTestApp({
        db,
        clock,
        ports: { email: createSmtpEmailSender(url) },
      });
      const row = await insertOutbox(db, { app_id: appId, next_attempt_at: clock.now() });
      expect(await deliver(tlsServices, db, { ids: [row.id] })).toMatchObject({ sent: 1 });
      expect(smtp.received).toHaveLength(1);
      expect(smtp.received[0]).toMatchObject({ secure: true, authUser: USER });
    } finally {
      await smtp.close();
    }
  });
});

if (!services.postgres) announceSkip("npm start delivering over SMTP", "TEST_DATABASE_URL");

describe.runIf(Boolean(services.postgres))("npm start with SMTP_URL", () => {
  it("delivers a queued row through the SMTP server from its scheduled job", async () => {
    const smtp = await startSmtpServer("PLAIN");
    const database = await createTestDatabase(services.postgres ?? "");
    const adminKey = "hk_admin_node_smtp_0123456789abcdef";
    const server = await startNodeServer({
      DATABASE_URL: database.url,
      ADMIN_API_KEY: adminKey,
      KEY_ENCRYPTION_SECRET: "node-smtp-key-encryption-secret-0123456789",
      SMTP_URL: `smtp://${encodeURIComponent(USER)}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${smtp.port}`,
      EMAIL_FROM: "no-reply@node.test",
      SCHEDULE_INTERVAL_SECONDS: "1",
    });
    const pool = new pg.Pool({ connectionString: database.url });
    try {
      const created = await fetch(`${server.url}/v1/apps`, {
        method: "POST",
        headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
        body: JSON.stringify({ name: "node", display_name: "Node" }),
      });
      expect(created.status).toBe(201);
      const { rows } = await pool.query("select id from apps where name = 'node'");
      await pool.query(
        `insert into email_outbox (id, app_id, kind, to_address, from_name, subject, text_body, html_body)
         values ('eml_node_1', $1, 'password_reset', 'ada@node.test', 'Node', 'Reset', 'text part', '<p>html part</p>')`,
        [rows[0].id],
      );
      await until(() => smtp.received.length > 0, {
        timeoutMs: 15_000,
        message: "a message at the SMTP server",
      });
      const [message] = smtp.received;
      expect(message?.envelopeTo).toEqual(["ada@node.test"]);
      expect(message?.mail.from?.value).toEqual([{ address: "no-reply@node.test", name: "Node" }]);
      expect(message?.mail.subject).toBe("Reset");
      await until(
        async () =>
          (await pool.query("select status from email_outbox where id = 'eml_node_1'")).rows[0]
            ?.status === "sent",
        { timeoutMs: 5_000, message: "the row marked sent" },
      );
      // The log line follows the row's update; the child's output arrives when it arrives.
      await until(() => server.output().includes('"message":"email sent"'), {
        timeoutMs: 5_000,
        message: "the email sent log line",
      });
      expect(server.output()).not.toContain("html part");
    } finally {
      await pool.end();
      await server.stop();
      await smtp.close();
      await database.drop();
    }
  });
});
