import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScheduledJobs, scheduledJobs } from "../functions";
import type { App } from "../src/app";
import { deliverEmailAfterResponse } from "../src/http/email-dispatch";
import type { DatabasePort, EmailMessage, Ports } from "../src/ports";
import { EmailDeliveryError } from "../src/ports/email";
import type { Services } from "../src/services/context";
import { createTestApp, createTestClock, withExecutionContext } from "./support/app";
import { databaseBackends } from "./support/backends";
import { auditOf, deliver, insertOutbox, readOutbox, recordingSender } from "./support/email";
import { createTenant } from "./support/identity";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe.each(databaseBackends("email delivery"))("email delivery on $name", (backend) => {
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  let appId: string;
  const clock = createTestClock();
  /** What the sender under test does with the next messages; success unless a test says. */
  let outcome: (message: EmailMessage) => void | Promise<void> = () => {};
  const sender = recordingSender((message) => outcome(message));
  let app: App;
  let ports: Ports;
  let services: Services;

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    ({ app, ports, services } = createTestApp({ db, clock, ports: { email: sender } }));
    appId = (await createTenant(app, "acme")).app.id;
  });
  afterAll(() => dispose());

  const due = (values: Record<string, unknown> = {}) =>
    insertOutbox(db, { app_id: appId, next_attempt_at: clock.now(), ...values });
  const sentTo = (id: string) => sender.sent.filter((message) => message.id === id).length;

  it("hands a due row to the sender once, marks it sent, clears its bodies and audits it", async () => {
    outcome = () => {};
    const row = await due();
    const report = await deliver(services, db, { ids: [row.id] });
    expect(report).toEqual({ sent: 1, failed: 0, retried: 0 });
    expect(sender.sent.find((message) => message.id === row.id)).toEqual({
      id: row.id,
      to: row.to_address,
      from: "heimdall@localhost",
      fromName: "Acme Rockets",
      subject: row.subject,
      text: row.text_body,
      html: row.html_body,
    });
    expect(await readOutbox(db, row.id)).toMatchObject({
      status: "sent",
      attempts: 1,
      sent_at: clock.now(),
      last_error: null,
      text_body: null,
      html_body: null,
    });
    const audit = await auditOf(db, row.id);
    expect(audit).toMatchObject([
      {
        app_id: appId,
        action: "email.sent",
        actor_type: "system",
        target_type: "email",
        metadata: { kind: "email_verification", attempts: 1 },
      },
    ]);
    expect(JSON.stringify(audit)).not.toContain("secret-");
    // A sent row is not due again.
    expect(await deliver(services, db, { ids: [row.id] })).toEqual({
      sent: 0,
      failed: 0,
      retried: 0,
    });
    expect(sentTo(row.id)).toBe(1);
  });

  it("keeps the bodies of a sent row when the development mailbox is on", async () => {
    const mailbox = createTestApp({
      db,
      clock,
      env: { DEV_MAILBOX: "true" },
      ports: { email: recordingSender() },
    });
    const row = await due();
    expect(await deliver(mailbox.services, db, { ids: [row.id] })).toMatchObject({ sent: 1 });
    expect(await readOutbox(db, row.id)).toMatchObject({
      status: "sent",
      text_body: row.text_body,
      html_body: row.html_body,
    });
  });

  it("leaves rows not yet due, and rows of other ids, alone", async () => {
    outcome = () => {};
    const later = await due({ next_attempt_at: new Date(clock.now().getTime() + MINUTE) });
    const other = await due();
    const asked = await due();
    expect(await deliver(services, db, { ids: [later.id, asked.id] })).toEqual({
      sent: 1,
      failed: 0,
      retried: 0,
    });
    expect((await readOutbox(db, later.id)).status).toBe("pending");
    expect((await readOutbox(db, other.id)).status).toBe("pending");
    expect((await readOutbox(db, asked.id)).status).toBe("sent");
    await deliver(services, db, { ids: [other.id] });
  });

  it("gives each row to one of two dispatchers running at once", async () => {
    const rows = await Promise.all(Array.from({ length: 12 }, () => due({ kind: "race" })));
    const ids = rows.map((row) => row.id);
    // Each hand-over yields, so the two dispatchers interleave.
    outcome = () => new Promise((resolve) => setImmediate(resolve));
    const reports = await Promise.all([
      deliver(services, db, { ids }),
      deliver(services, db, { ids }),
    ]);
    outcome = () => {};
    expect(reports[0].sent + reports[1].sent).toBe(12);
    expect(ids.map(sentTo)).toEqual(ids.map(() => 1));
    for (const id of ids) {
      expect(await readOutbox(db, id)).toMatchObject({ status: "sent", attempts: 1 });
    }
  });

  it("retries a retryable failure after 1 m, 5 m, 30 m, 2 h and 6 h, then fails the row", async () => {
    outcome = () => {
      throw new EmailDeliveryError("smtp: 451 try again later", true);
    };
    const row = await due();
    const start = clock.now().getTime();
    let elapsed = 0;
    for (const [index, wait] of [MINUTE, 5 * MINUTE, 30 * MINUTE, 2 * HOUR, 6 * HOUR].entries()) {
      expect(await deliver(services, db, { ids: [row.id] })).toEqual({
        sent: 0,
        failed: 0,
        retried: 1,
      });
      expect(await readOutbox(db, row.id)).toMatchObject({
        status: "pending",
        attempts: index + 1,
        next_attempt_at: new Date(start + elapsed + wait),
        last_error: "smtp: 451 try again later",
        text_body: row.text_body,
      });
      // Not a moment early.
      clock.advance(wait - 1000);
      elapsed += wait - 1000;
      expect((await deliver(services, db, { ids: [row.id] })).retried).toBe(0);
      clock.advance(1000);
      elapsed += 1000;
    }
    expect(await deliver(services, db, { ids: [row.id] })).toEqual({
      sent: 0,
      failed: 1,
      retried: 0,
    });
    expect(await readOutbox(db, row.id)).toMatchObject({
      status: "failed",
      attempts: 6,
      sent_at: null,
      last_error: "smtp: 451 try again later",
      text_body: null,
      html_body: null,
    });
    expect(sentTo(row.id)).toBe(6);
    expect(await auditOf(db, row.id)).toMatchObject([
      { action: "email.failed", metadata: { attempts: 6 } },
    ]);
    outcome = () => {};
  });

  it("fails a refused message at once, and retries an unexpected error", async () => {
    outcome = (message) => {
      if (message.subject === "refused")
        throw new EmailDeliveryError("smtp: 550 no such user", false);
      throw new Error("socket hang up");
    };
    const refused = await due({ subject: "refused" });
    const broken = await due({ subject: "broken" });
    expect(await deliver(services, db, { ids: [refused.id, broken.id] })).toEqual({
      sent: 0,
      failed: 1,
      retried: 1,
    });
    expect(await readOutbox(db, refused.id)).toMatchObject({
      status: "failed",
      attempts: 1,
      last_error: "smtp: 550 no such user",
    });
    expect(await readOutbox(db, broken.id)).toMatchObject({
      status: "pending",
      attempts: 1,
      last_error: "socket hang up",
      next_attempt_at: new Date(clock.now().getTime() + MINUTE),
    });
    outcome = () => {};
    clock.advance(MINUTE);
    expect(await deliver(services, db, { ids: [broken.id] })).toMatchObject({ sent: 1 });
  });

  it("never throws: a database failure is logged and reported as nothing done", async () => {
    const closed = createTestApp({ db, clock, ports: { email: recordingSender() } });
    const failing: DatabasePort = {
      driver: db.driver,
      sharedAcrossRequests: db.sharedAcrossRequests,
      close: async () => {},
      session: () => {
        throw new Error("database unreachable");
      },
    };
    expect(await deliver(closed.services, failing)).toEqual({ sent: 0, failed: 0, retried: 0 });
    expect(closed.logs.find((event) => event.message === "email delivery failed")).toMatchObject({
      level: "error",
    });
  });

  it("logs deliveries with the email id and never the body", async () => {
    const logged = createTestApp({ db, clock, ports: { email: recordingSender() } });
    const row = await due();
    await deliver(logged.services, db, { ids: [row.id] });
    const event = logged.logs.find((entry) => entry.message === "email sent");
    expect(event).toMatchObject({ email_id: row.id, kind: "email_verification", attempt: 1 });
    expect(JSON.stringify(logged.logs)).not.toContain("secret-");
  });

  it("is run by the scheduled job email-delivery", async () => {
    outcome = () => {};
    const row = await due({ kind: "scheduled" });
    const job = scheduledJobs.find((candidate) => candidate.name === "email-delivery");
    expect(job).toBeDefined();
    expect(await runScheduledJobs(services, ports.db, job ? [job] : [])).toBe(0);
    expect(await readOutbox(db, row.id)).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("delivers after the response, and a failing sender does not change the answer", async () => {
    const failing = recordingSender(() => {
      throw new EmailDeliveryError("resend answered 503", true);
    });
    for (const [email, expected] of [
      [recordingSender(), "sent"],
      [failing, "pending"],
    ] as const) {
      const served = createTestApp({ db, clock, ports: { email } });
      const row = await due();
      served.app.post("/test/queued", (c) => {
        deliverEmailAfterResponse(c, [row.id]);
        return c.json({ queued: row.id }, 202);
      });
      const client = withExecutionContext(served.app);
      const res = await client.request("/test/queued", { method: "POST" });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ queued: row.id });
      await client.afterResponses();
      expect(email.sent.map((message) => message.id)).toEqual([row.id]);
      expect(await readOutbox(db, row.id)).toMatchObject({ status: expected, attempts: 1 });
    }
  });
});
