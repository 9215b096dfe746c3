import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announceSkip, services } from "./support/services";
import { until } from "./support/wait";
import { createWorkerDatabase, startWorker, type Worker } from "./support/worker";

const secrets = {
  APP_ENV: "test",
  ADMIN_API_KEY: "hk_admin_worker_test_0123456789abcdef",
  KEY_ENCRYPTION_SECRET: "worker-test-key-encryption-secret-0123456789",
};

if (!services.postgres) announceSkip("email delivery inside workerd", "TEST_DATABASE_URL");

/**
 * The Worker, in workerd, delivering the outbox through Resend's API: its cron handler (run by
 * wrangler's `/__scheduled`) hands a queued row to a loopback server speaking Resend's protocol.
 */
describe.runIf(Boolean(services.postgres))("email delivery inside workerd", () => {
  let worker: Worker;
  let database: Awaited<ReturnType<typeof createWorkerDatabase>>;
  let pool: pg.Pool;
  const received: Array<{ path?: string; headers: IncomingHttpHeaders; body: unknown }> = [];
  const resend = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => {
      raw += chunk;
    });
    req.on("end", () => {
      received.push({ path: req.url, headers: req.headers, body: JSON.parse(raw) });
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ id: "re_123" }));
    });
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => resend.listen(0, "127.0.0.1", resolve));
    const { port } = resend.address() as AddressInfo;
    database = await createWorkerDatabase(services.postgres ?? "");
    pool = new pg.Pool({ connectionString: database.settings.DATABASE_URL });
    worker = await startWorker(
      {
        ...secrets,
        ...database.settings,
        EMAIL_PROVIDER: "resend",
        EMAIL_API_KEY: "re_worker_test_key",
        EMAIL_API_URL: `http://127.0.0.1:${port}`,
        EMAIL_FROM: "no-reply@edge.test",
      },
      0,
      { testScheduled: true },
    );
  });
  afterAll(async () => {
    await worker?.dispose();
    await pool?.end();
    await database?.close();
    await new Promise((resolve) => resend.close(resolve));
  });

  it("sends a queued row through Resend from the scheduled handler", async () => {
    const created = await worker.fetch("http://heimdall.test/v1/apps", {
      method: "POST",
      headers: {
        Authorization: `Bearer ${secrets.ADMIN_API_KEY}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ name: "edge", display_name: "Edge" }),
    });
    expect(created.status).toBe(201);
    const { rows } = await pool.query("select id from apps where name = 'edge'");
    await pool.query(
      `insert into email_outbox (id, app_id, kind, to_address, from_name, subject, text_body, html_body)
       values ('eml_worker_1', $1, 'email_verification', 'ada@edge.test', 'Edge', 'Confirm', 'text part', '<p>html part</p>')`,
      [rows[0].id],
    );

    const scheduled = await worker.fetch("http://heimdall.test/__scheduled?cron=*/5+*+*+*+*");
    expect(scheduled.status).toBe(200);
    await scheduled.text();
    await until(() => received.length > 0, { timeoutMs: 15_000, message: "a Resend request" });

    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      path: "/emails",
      headers: {
        authorization: "Bearer re_worker_test_key",
        "idempotency-key": "eml_worker_1",
        "content-type": "application/json",
      },
      body: {
        from: "Edge <no-reply@edge.test>",
        to: ["ada@edge.test"],
        subject: "Confirm",
        text: "text part",
        html: "<p>html part</p>",
      },
    });
    await until(
      async () =>
        (await pool.query("select status from email_outbox where id = 'eml_worker_1'")).rows[0]
          ?.status === "sent",
      { timeoutMs: 10_000, message: "the row marked sent" },
    );
    const { rows: stored } = await pool.query(
      "select status, attempts, text_body, html_body, sent_at from email_outbox where id = 'eml_worker_1'",
    );
    expect(stored[0]).toMatchObject({
      status: "sent",
      attempts: 1,
      text_body: null,
      html_body: null,
    });
    expect(stored[0].sent_at).toBeInstanceOf(Date);
  });

  it("refuses SMTP_URL on Workers, saying what to set instead", async () => {
    const smtp = await startWorker({
      ...secrets,
      ...database.settings,
      SMTP_URL: "smtp://user:pass@127.0.0.1:2525",
    });
    try {
      const res = await smtp.fetch("http://heimdall.test/v1/health");
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({
        error: { code: "internal_error", message: "The server is misconfigured" },
      });
    } finally {
      await smtp.dispose();
    }
  });
});
