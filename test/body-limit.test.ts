import { request as httpRequest } from "node:http";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { expectError } from "./support/http";
import { type Listening, listen } from "./support/server";

const LIMIT = 1024;

let db: DatabasePort;
let server: Listening;
/** What the probe route read, one entry per request that reached it. */
const seen: Array<{ bytes: number; light: boolean }> = [];

/**
 * @hono/node-server's request stays its light object until something reads `.body`; its inspect
 * output shows the full `Request` it built, if any.
 */
const isLight = (raw: Request) => inspect(raw).includes("nativeRequest: undefined");

beforeAll(async () => {
  db = await createMemoryDatabase();
  const { app } = createTestApp({ db, env: { MAX_BODY_BYTES: String(LIMIT) } });
  app.post("/v1/probe", async (c) => {
    const light = isLight(c.req.raw);
    const text = await c.req.text();
    seen.push({ bytes: Buffer.byteLength(text), light });
    return c.json({ bytes: Buffer.byteLength(text), light });
  });
  app.get("/v1/probe", (c) => c.json({ light: isLight(c.req.raw) }));
  server = await listen(app);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

/** A JSON string body of exactly `bytes` bytes. */
const jsonOf = (bytes: number) => JSON.stringify("x".repeat(bytes - 2));

/** A POST whose body is sent chunked (no Content-Length), in `chunks`. */
function postChunked(path: string, chunks: string[]) {
  return new Promise<{ status: number; body: string; headers: Headers }>((resolve, reject) => {
    const req = httpRequest(
      `${server.url}${path}`,
      { method: "POST", headers: { "content-type": "application/json" } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => {
          body += chunk;
        });
        res.on("end", () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (typeof value === "string") headers.set(name, value);
          }
          resolve({ status: res.statusCode ?? 0, body, headers });
        });
      },
    );
    // A refusal may close the connection while the client still writes.
    req.on("error", reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

const asResponse = (r: { status: number; body: string; headers: Headers }) =>
  new Response(r.body, { status: r.status, headers: r.headers });

describe("the body limit over HTTP", () => {
  it("answers GET without touching the request body", async () => {
    const res = await fetch(`${server.url}/v1/probe`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ light: true });
    const info = await fetch(`${server.url}/v1`);
    expect(info.status).toBe(200);
  });

  it("refuses a Content-Length over the limit with 413 before the route sees it", async () => {
    const before = seen.length;
    const res = await fetch(`${server.url}/v1/probe`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: jsonOf(LIMIT + 1),
    });
    const body = await expectError(res, 413, "payload_too_large");
    expect(body.error.message).toBe(`The request body is larger than ${LIMIT} bytes`);
    expect(seen.length).toBe(before);
  });

  it("refuses a Content-Length over the limit without waiting for the body", async () => {
    const before = seen.length;
    const answer = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/probe`, {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(10 * LIMIT) },
      });
      req.on("response", (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on("error", reject);
      // A tenth of what it announced, and the rest never comes.
      req.write("x".repeat(LIMIT));
    });
    expect(answer).toBe(413);
    expect(seen.length).toBe(before);
  });

  it("passes a body of exactly the limit, read without web streams", async () => {
    const res = await fetch(`${server.url}/v1/probe`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: jsonOf(LIMIT),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ bytes: LIMIT, light: true });
  });

  it("counts a chunked body as it streams: over the limit is 413 and the route never sees it", async () => {
    const before = seen.length;
    const half = "x".repeat(LIMIT / 2);
    const res = await postChunked("/v1/probe", [`"${half}`, half, `"`]);
    const body = await expectError(asResponse(res), 413, "payload_too_large");
    expect(body.error.message).toBe(`The request body is larger than ${LIMIT} bytes`);
    expect(seen.length).toBe(before);
  });

  it("passes a chunked body of exactly the limit, whole", async () => {
    const body = jsonOf(LIMIT);
    const res = await postChunked("/v1/probe", [body.slice(0, 100), body.slice(100)]);
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ bytes: LIMIT });
    expect(seen.at(-1)?.bytes).toBe(LIMIT);
  });
});
