import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsoleLogger } from "../src/adapters/console-logger";
import { createHttpProviderEmailSender } from "../src/adapters/email/http-provider";
import { emailSenderFor } from "../src/adapters/email/select";
import { createSmtpEmailSender } from "../src/adapters/node/smtp";
import { parseConfig } from "../src/config";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp, createTestClock, testEnv } from "./support/app";
import { deliver, insertOutbox, readOutbox } from "./support/email";
import { createTenant } from "./support/identity";

const logger = createConsoleLogger({ level: "silent" });

interface Received {
  method: string | undefined;
  path: string | undefined;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/**
 * A loopback stand-in for a provider's API: records each request and answers with the status
 * and body the test set for the recipient (`to` of Resend, `To` of Postmark), 200 otherwise.
 */
async function startProviderServer() {
  const received: Received[] = [];
  const answers = new Map<string, { status: number; body: unknown }>();
  const server = createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk) => {
      raw += chunk;
    });
    req.on("end", () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      received.push({ method: req.method, path: req.url, headers: req.headers, body });
      const to = String(Array.isArray(body.to) ? body.to[0] : body.To);
      const answer = answers.get(to) ?? { status: 200, body: { id: "provider-id" } };
      res.writeHead(answer.status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    answers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const providerCases = [
  {
    provider: "resend" as const,
    path: "/emails",
    auth: (key: string) => ({ authorization: `Bearer ${key}` }),
    body: {
      from: '"Acme, Rockets" <no-reply@acme.test>',
      to: ["ada@example.test"],
      subject: "Confirm your address",
      text: "Open https://heimdall.test/verify?token=abc",
      html: "<p>Confirm</p>",
    },
    refusals: [
      {
        status: 401,
        words: "Missing API key",
        body: { statusCode: 401, name: "missing_api_key", message: "Missing API key" },
      },
      {
        status: 422,
        words: "Invalid `to` field",
        body: { statusCode: 422, name: "validation_error", message: "Invalid `to` field" },
      },
    ],
    deferrals: [
      { status: 429, body: { statusCode: 429, name: "rate_limit_exceeded", message: "Too many" } },
      { status: 503, body: { message: "Service unavailable" } },
    ],
  },
  {
    provider: "postmark" as const,
    path: "/email",
    auth: (key: string) => ({ "x-postmark-server-token": key, accept: "application/json" }),
    body: {
      From: '"Acme, Rockets" <no-reply@acme.test>',
      To: "ada@example.test",
      Subject: "Confirm your address",
      TextBody: "Open https://heimdall.test/verify?token=abc",
      HtmlBody: "<p>Confirm</p>",
      MessageStream: "outbound",
    },
    refusals: [
      {
        status: 401,
        words: "Bad or missing Server API token (ErrorCode 10)",
        body: { ErrorCode: 10, Message: "Bad or missing Server API token" },
      },
      {
        status: 422,
        words: "You tried to send to an inactive recipient (ErrorCode 406)",
        body: { ErrorCode: 406, Message: "You tried to send to an inactive recipient" },
      },
    ],
    deferrals: [
      { status: 429, body: { ErrorCode: 429, Message: "Rate limit exceeded" } },
      { status: 503, body: { Message: "Service unavailable" } },
    ],
  },
];

describe.each(providerCases)("the $provider HTTP API", (spec) => {
  let db: DatabasePort;
  let api: Awaited<ReturnType<typeof startProviderServer>>;
  let appId: string;
  const clock = createTestClock();
  const apiKey = `${spec.provider}-key-0123456789`;
  let app: ReturnType<typeof createTestApp>;

  beforeAll(async () => {
    db = await createMemoryDatabase();
    api = await startProviderServer();
    const env = {
      EMAIL_PROVIDER: spec.provider,
      EMAIL_API_KEY: apiKey,
      EMAIL_API_URL: api.url,
      EMAIL_FROM: "no-reply@acme.test",
    };
    // The sender the entries would build from this configuration.
    const config = parseConfig({ ...testEnv, ...env });
    const email = emailSenderFor(config, logger, { smtp: createSmtpEmailSender });
    expect(email.name).toBe(spec.provider);
    app = createTestApp({ db, clock, env, ports: { email } });
    appId = (await createTenant(app.app, "acme")).app.id;
  });
  afterAll(async () => {
    await api.close();
    await db.close();
  });

  const due = (values: Record<string, unknown> = {}) =>
    insertOutbox(db, {
      app_id: appId,
      next_attempt_at: clock.now(),
      to_address: "ada@example.test",
      from_name: "Acme, Rockets",
      subject: "Confirm your address",
      text_body: "Open https://heimdall.test/verify?token=abc",
      html_body: "<p>Confirm</p>",
      ...values,
    });

  it("posts the documented request: path, auth header, JSON body, idempotency key", async () => {
    const row = await due();
    expect(await deliver(app.services, db, { ids: [row.id] })).toEqual({
      sent: 1,
      failed: 0,
      retried: 0,
    });
    const request = api.received.at(-1);
    expect(request?.method).toBe("POST");
    expect(request?.path).toBe(spec.path);
    expect(request?.headers).toMatchObject({
      ...spec.auth(apiKey),
      "content-type": "application/json",
    });
    expect(request?.body).toEqual(spec.body);
    if (spec.provider === "resend") expect(request?.headers["idempotency-key"]).toBe(row.id);
    expect(await readOutbox(db, row.id)).toMatchObject({ status: "sent", attempts: 1 });
  });

  it("fails a row at once on 401 and 422, keeping the provider's words", async () => {
    for (const refusal of spec.refusals) {
      const to = `refused-${refusal.status}@example.test`;
      api.answers.set(to, refusal);
      const row = await due({ to_address: to });
      expect(await deliver(app.services, db, { ids: [row.id] })).toEqual({
        sent: 0,
        failed: 1,
        retried: 0,
      });
      const stored = await readOutbox(db, row.id);
      expect(stored).toMatchObject({ status: "failed", attempts: 1 });
      expect(stored.last_error).toBe(
        `${spec.provider} answered ${refusal.status}: ${refusal.words}`,
      );
      expect(stored.last_error).not.toContain(apiKey);
    }
  });

  it("retries a row with backoff on 429 and 503, and sends it once the API recovers", async () => {
    for (const deferral of spec.deferrals) {
      const to = `deferred-${deferral.status}@example.test`;
      api.answers.set(to, deferral);
      const row = await due({ to_address: to });
      expect(await deliver(app.services, db, { ids: [row.id] })).toEqual({
        sent: 0,
        failed: 0,
        retried: 1,
      });
      expect(await readOutbox(db, row.id)).toMatchObject({
        status: "pending",
        attempts: 1,
        next_attempt_at: new Date(clock.now().getTime() + 60_000),
        last_error: expect.stringContaining(`${spec.provider} answered ${deferral.status}`),
      });
      clock.advance(60_000);
      expect(await deliver(app.services, db, { ids: [row.id] })).toMatchObject({ retried: 1 });
      expect(await readOutbox(db, row.id)).toMatchObject({
        attempts: 2,
        next_attempt_at: new Date(clock.now().getTime() + 5 * 60_000),
      });
      api.answers.delete(to);
      clock.advance(5 * 60_000);
      expect(await deliver(app.services, db, { ids: [row.id] })).toMatchObject({ sent: 1 });
      expect(await readOutbox(db, row.id)).toMatchObject({ status: "sent", attempts: 3 });
    }
  });
});

describe("HTTP provider senders", () => {
  it("retry when the API cannot be reached", async () => {
    const email = createHttpProviderEmailSender({
      provider: "resend",
      apiKey: "k",
      apiUrl: "http://127.0.0.1:1",
    });
    const message = {
      id: "eml_1",
      to: "a@example.test",
      from: "f@example.test",
      fromName: "F",
      subject: "s",
      text: "t",
      html: "h",
    };
    await expect(email.send(message)).rejects.toMatchObject({
      name: "EmailDeliveryError",
      retryable: true,
      message: expect.stringMatching(/^resend: no answer/),
    });
  });

  it("are chosen by configuration: SMTP on Node, refused on Workers; the log otherwise", () => {
    const smtp = parseConfig({ ...testEnv, SMTP_URL: "smtp://u:p@127.0.0.1:2525" });
    expect(emailSenderFor(smtp, logger, { smtp: createSmtpEmailSender }).name).toBe("smtp");
    expect(() => emailSenderFor(smtp, logger)).toThrow(
      /SMTP_URL is for Node; on Workers set EMAIL_PROVIDER/,
    );
    const postmark = parseConfig({ ...testEnv, EMAIL_PROVIDER: "postmark", EMAIL_API_KEY: "k" });
    expect(emailSenderFor(postmark, logger).name).toBe("postmark");
    expect(emailSenderFor(parseConfig(testEnv), logger).name).toBe("log");
  });
});
