import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import * as Sentry from "@sentry/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSentryNodeReporter, type SentryNodeReporter } from "../src/adapters/sentry/node";
import { scrubText } from "../src/adapters/sentry/scrub";
import { parseConfig } from "../src/config";
import type { Database, DatabasePort } from "../src/ports";
import { adminHeaders, createTestApp, TEST_ADMIN_KEY, testEnv } from "./support/app";
import { readJson } from "./support/http";
import { type Listening, listen } from "./support/server";
import { until } from "./support/wait";
import { startWorker, type Worker } from "./support/worker";

/**
 * Sentry reporting on both runtimes against a fake Sentry: 5xx answers and unhandled errors
 * become exactly one event each, 4xx answers none, and no credential reaches the event.
 */

// biome-ignore lint/suspicious/noExplicitAny: envelope items are arbitrary JSON
type Json = any;

interface Envelope {
  project: string;
  raw: string;
  header: Json;
  items: Array<{ header: Json; payload: Json }>;
}

/** A Sentry ingest on 127.0.0.1 that records every envelope POSTed to `/api/<id>/envelope/`. */
async function startFakeSentry() {
  const envelopes: Envelope[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const match = /^\/api\/([^/]+)\/envelope\/?(\?.*)?$/.exec(req.url ?? "");
      if (req.method === "POST" && match?.[1]) {
        let body = Buffer.concat(chunks);
        if (req.headers["content-encoding"] === "gzip" || (body[0] === 0x1f && body[1] === 0x8b)) {
          body = gunzipSync(body);
        }
        envelopes.push({ project: match[1], raw: body.toString("utf8"), ...parseEnvelope(body) });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const events = () =>
    envelopes.flatMap((envelope) =>
      envelope.items.filter((item) => item.header.type === "event").map((item) => item.payload),
    );
  return {
    dsn: `http://public@127.0.0.1:${port}/1`,
    envelopes,
    events,
    /** Polls until `count` events arrived (or ~3 s), then once more so extras would show. */
    async eventsAfter(count: number, timeoutMs = 3000): Promise<Json[]> {
      const deadline = Date.now() + timeoutMs;
      while (events().length < count && Date.now() < deadline) await sleep(50);
      await sleep(200);
      return events();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Newline-delimited: the envelope header, then an item header and its payload per item. */
function parseEnvelope(body: Buffer) {
  let offset = 0;
  const readLine = () => {
    const end = body.indexOf(0x0a, offset);
    const line = body.subarray(offset, end === -1 ? body.length : end).toString("utf8");
    offset = end === -1 ? body.length : end + 1;
    return line;
  };
  const header = JSON.parse(readLine());
  const items: Envelope["items"] = [];
  while (offset < body.length) {
    const line = readLine();
    if (!line.trim()) continue;
    const itemHeader = JSON.parse(line);
    let payload: string;
    if (typeof itemHeader.length === "number") {
      payload = body.subarray(offset, offset + itemHeader.length).toString("utf8");
      offset += itemHeader.length + 1;
    } else {
      payload = readLine();
    }
    let parsed: Json = payload;
    try {
      parsed = JSON.parse(payload);
    } catch {}
    items.push({ header: itemHeader, payload: parsed });
  }
  return { header, items };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Opens sessions, and fails on the first query: a database that is down. */
function downDatabase(): DatabasePort {
  const db = new Proxy(
    {},
    {
      get() {
        throw new Error("boom: db down");
      },
    },
  ) as Database;
  return {
    driver: "pglite",
    sharedAcrossRequests: true,
    session: () => ({ db, release: async () => {} }),
    close: async () => {},
  };
}

const secretQuery = "query-secret-0123456789";
const apiKey = "pk_live_should_never_be_sent_0123456789";
const cookie = "session=cookie-secret-0123456789";

describe("Sentry on Node (@sentry/node)", () => {
  let sentry: Awaited<ReturnType<typeof startFakeSentry>>;
  let reporter: SentryNodeReporter;
  let server: Listening;

  beforeAll(async () => {
    sentry = await startFakeSentry();
    const env = { SENTRY_DSN: sentry.dsn };
    reporter = createSentryNodeReporter(parseConfig({ ...testEnv, ...env }));
    const { app } = createTestApp({ db: downDatabase(), env, ports: { errors: reporter } });
    // Over a real socket, so the SDK's own http.server integration attaches the request (its
    // headers included) the way it does in production.
    server = await listen(app);
  });

  afterAll(async () => {
    await server?.close();
    await Sentry.close(2000);
    await sentry?.close();
  });

  it("sends nothing for 4xx answers: 404, 401, 400", async () => {
    const notFound = await fetch(`${server.url}/v1/no-such-route?token=${secretQuery}`);
    expect(notFound.status).toBe(404);
    const unauthorized = await fetch(`${server.url}/v1/users`);
    expect(unauthorized.status).toBe(401);
    const badJson = await fetch(`${server.url}/v1/apps`, {
      method: "POST",
      headers: { ...adminHeaders, "Content-Type": "application/json" },
      body: "{not json",
    });
    expect(badJson.status).toBe(400);

    expect(await reporter.flush(2000)).toBe(true);
    expect(await sentry.eventsAfter(0, 500)).toHaveLength(0);
  });

  it("sends exactly one event for a 500, with the request id and no credentials", async () => {
    const res = await fetch(`${server.url}/v1/apps?limit=5&token=${secretQuery}`, {
      headers: {
        ...adminHeaders,
        "X-API-Key": apiKey,
        Cookie: cookie,
        "X-Forwarded-For": "203.0.113.9",
      },
    });
    const body = await readJson(res);
    expect(res.status, JSON.stringify(body)).toBe(500);
    const requestId = res.headers.get("x-request-id");
    expect(requestId).toBeTruthy();

    expect(await reporter.flush(2000)).toBe(true);
    const events = await sentry.eventsAfter(1);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event.exception.values.at(-1)).toMatchObject({ type: "Error", value: "boom: db down" });
    expect(event.tags).toMatchObject({ request_id: requestId, "http.status_code": "500" });
    expect(event.contexts.request).toEqual({ method: "GET", path: "/v1/apps" });
    expect(event.environment).toBe("test");
    // The SDK attached the request: the scrubbing had something to scrub.
    expect(event.request?.headers?.["x-request-id"] ?? event.request?.headers?.host).toBeTruthy();
    const headerNames = Object.keys(event.request.headers).map((name) => name.toLowerCase());
    for (const name of ["authorization", "cookie", "x-api-key", "x-forwarded-for"]) {
      expect(headerNames).not.toContain(name);
    }
    expect(event.user?.ip_address).toBeUndefined();

    const raw = sentry.envelopes.map((envelope) => envelope.raw).join("\n");
    for (const secret of [
      TEST_ADMIN_KEY,
      adminHeaders.Authorization,
      apiKey,
      cookie,
      secretQuery,
    ]) {
      expect(raw).not.toContain(secret);
    }
    expect(raw).not.toMatch(/"authorization"/i);
    expect(raw).not.toContain("203.0.113.9");
  });
});

/**
 * The Worker, with an unreachable database, reporting to a fake Sentry: started before the
 * describe's tests and stopped after them.
 */
function workerReportingToSentry(adminKey: string, env: Record<string, string> = {}) {
  const started = {} as { sentry: Awaited<ReturnType<typeof startFakeSentry>>; worker: Worker };
  beforeAll(async () => {
    started.sentry = await startFakeSentry();
    started.worker = await startWorker({
      APP_ENV: "test",
      ADMIN_API_KEY: adminKey,
      KEY_ENCRYPTION_SECRET: "sentry-test-key-encryption-secret-0123456789",
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
      SENTRY_DSN: started.sentry.dsn,
      ...env,
    });
  });
  afterAll(async () => {
    await started.worker?.dispose();
    await started.sentry?.close();
  });
  return started;
}

describe("Sentry on Workers (@sentry/cloudflare)", () => {
  const adminKey = "hk_admin_sentry_test_0123456789abcdef";
  const started = workerReportingToSentry(adminKey);

  it("sends nothing for a 404", async () => {
    const res = await started.worker.fetch(
      `http://heimdall.test/v1/no-such-route?ticket=${secretQuery}`,
    );
    expect(res.status).toBe(404);
    await res.text();
    expect(await started.sentry.eventsAfter(0, 1000)).toHaveLength(0);
  });

  it("sends exactly one event for a 5xx (database unreachable), within the request", async () => {
    const res = await started.worker.fetch(`http://heimdall.test/v1/apps?token=${secretQuery}`, {
      headers: { Authorization: `Bearer ${adminKey}`, Cookie: cookie },
    });
    const text = await res.text();
    expect(res.status, text).toBeGreaterThanOrEqual(500);
    const requestId = res.headers.get("x-request-id");

    const events = await started.sentry.eventsAfter(1);
    expect(events).toHaveLength(1);
    const [event] = events;
    // Drizzle's failed query, with the bound values of the query taken out.
    expect(event.exception.values.at(-1).value).toMatch(
      /^Failed query: select .*\nparams: \[Filtered\]$/s,
    );
    expect(event.tags).toMatchObject({
      request_id: requestId,
      "http.status_code": String(res.status),
    });
    expect(event.contexts.request).toEqual({ method: "GET", path: "/v1/apps" });
    expect(event.request?.url).toBeTruthy();

    const raw = started.sentry.envelopes.map((envelope) => envelope.raw).join("\n");
    for (const secret of [adminKey, cookie, secretQuery]) expect(raw).not.toContain(secret);
    expect(raw).not.toMatch(/"authorization"/i);
  });
});

describe("Sentry tracing on Workers (SENTRY_TRACES_SAMPLE_RATE)", () => {
  const adminKey = "hk_admin_sentry_trace_0123456789abcdef";
  const started = workerReportingToSentry(adminKey, { SENTRY_TRACES_SAMPLE_RATE: "1" });

  it("streams the request's http.server span, without its credential headers", async () => {
    const res = await started.worker.fetch("http://heimdall.test/v1", {
      headers: { Authorization: `Bearer ${adminKey}`, Cookie: cookie },
    });
    expect(res.status).toBe(200);
    await res.text();
    const spans = () =>
      started.sentry.envelopes.flatMap((envelope) =>
        envelope.items
          .filter((item) => item.header.type === "span")
          .flatMap((item) => item.payload.items as Json[]),
      );
    await until(() => spans().length > 0, { message: "a span envelope" });
    const [span] = spans();
    expect(span.attributes["sentry.op"].value).toBe("http.server");
    expect(span.attributes["url.path"].value).toBe("/v1");
    expect(span.attributes["http.response.status_code"].value).toBe(200);
    expect(Object.keys(span.attributes)).not.toContain("http.request.header.authorization");
    expect(Object.keys(span.attributes)).not.toContain("http.request.header.cookie");
    const raw = started.sentry.envelopes.map((envelope) => envelope.raw).join("\n");
    for (const secret of [adminKey, cookie]) expect(raw).not.toContain(secret);
  });
});

describe("scrubText", () => {
  it("replaces the values of secret query parameters only", () => {
    expect(
      scrubText("/v1/live?ticket=abc&channel=x&access_token=t&api_key=k&Password=p&page=2"),
    ).toBe(
      "/v1/live?ticket=[Filtered]&channel=x&access_token=[Filtered]&api_key=[Filtered]&Password=[Filtered]&page=2",
    );
    expect(scrubText("token=abc")).toBe("token=[Filtered]");
    expect(scrubText("/v1/apps?limit=5&offset=0")).toBe("/v1/apps?limit=5&offset=0");
  });

  it("takes the bound values out of a failed query, in plain text and in a JSON log line", () => {
    const message = 'Failed query: select "id" from "users" where "email" = $1\nparams: ada@x.dev';
    expect(scrubText(message)).toBe(
      'Failed query: select "id" from "users" where "email" = $1\nparams: [Filtered]',
    );
    const line = JSON.stringify({
      level: "error",
      error: { message, stack: `Error: ${message}\n at x` },
    });
    expect(scrubText(line)).not.toContain("ada@x.dev");
    expect(JSON.parse(scrubText(line)).error.stack).toBe(
      'Error: Failed query: select "id" from "users" where "email" = $1\nparams: [Filtered]\n at x',
    );
  });
});
