import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config";
import type { DatabasePort } from "../src/ports";
import { listMailbox } from "../src/routes/dev-mailbox/dev-mailbox.routes";
import { createMemoryDatabase, createTestApp, createTestClock, testEnv } from "./support/app";
import { insertOutbox } from "./support/email";
import { expectError, readBody } from "./support/http";
import { createTenant } from "./support/identity";

describe("the development mailbox", () => {
  let db: DatabasePort;
  const clock = createTestClock();
  let mailbox: ReturnType<typeof createTestApp>;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    db = await createMemoryDatabase();
    mailbox = createTestApp({ db, clock, env: { DEV_MAILBOX: "true" } });
    const acme = (await createTenant(mailbox.app, "acme")).app.id;
    const globex = (await createTenant(mailbox.app, "globex")).app.id;
    const at = (minutes: number) => new Date(clock.now().getTime() + minutes * 60_000);
    for (const [name, appId, minutes, to] of [
      ["acme-old", acme, 0, "ada@example.test"],
      ["globex", globex, 1, "ada@example.test"],
      ["acme-new", acme, 2, "bob@example.test"],
    ] as const) {
      const row = await insertOutbox(db, {
        app_id: appId,
        next_attempt_at: at(minutes),
        created_at: at(minutes),
        to_address: to,
        subject: name,
        text_body: `text of ${name}`,
        html_body: `<p>${name}</p>`,
      });
      ids[name] = row.id;
    }
  });
  afterAll(() => db.close());

  const list = async (query = "") => {
    const res = await mailbox.app.request(`/v1/dev/mailbox${query}`);
    expect(res.headers.get("cache-control")).toBe("no-store");
    return (await readBody(res, listMailbox, 200)).data;
  };

  it("lists every app's messages, newest first, bodies included, without credentials", async () => {
    const messages = await list();
    expect(messages.map((message) => message.subject)).toEqual(["acme-new", "globex", "acme-old"]);
    expect(messages[0]).toEqual({
      id: ids["acme-new"],
      app: "acme",
      kind: "email_verification",
      to: "bob@example.test",
      from_name: "Acme Rockets",
      subject: "acme-new",
      text: "text of acme-new",
      html: "<p>acme-new</p>",
      status: "pending",
      attempts: 0,
      last_error: null,
      created_at: "2026-11-23T10:02:00.000Z",
      sent_at: null,
    });
  });

  it("filters by app name and recipient, and limits the count", async () => {
    expect((await list("?app=acme")).map((message) => message.subject)).toEqual([
      "acme-new",
      "acme-old",
    ]);
    expect((await list("?to=ADA@example.test")).map((message) => message.subject)).toEqual([
      "globex",
      "acme-old",
    ]);
    expect((await list("?app=acme&to=ada@example.test")).map((m) => m.subject)).toEqual([
      "acme-old",
    ]);
    expect((await list("?limit=1")).map((message) => message.subject)).toEqual(["acme-new"]);
    expect(await list("?app=nobody")).toEqual([]);
  });

  it("refuses a bad limit in the error shape", async () => {
    await expectError(
      await mailbox.app.request("/v1/dev/mailbox?limit=0"),
      400,
      "validation_error",
    );
    await expectError(
      await mailbox.app.request("/v1/dev/mailbox?limit=101"),
      400,
      "validation_error",
    );
  });

  it("is in the OpenAPI document only where it is served", async () => {
    const served = (await (await mailbox.app.request("/v1/openapi.json")).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(served.paths)).toContain("/v1/dev/mailbox");
    const plain = createTestApp({ db, clock });
    const document = (await (await plain.app.request("/v1/openapi.json")).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(document.paths)).not.toContain("/v1/dev/mailbox");
  });

  it("is absent (404) unless turned on, and on by default in development only", async () => {
    const absent: Array<Record<string, string>> = [
      {},
      { APP_ENV: "development", DEV_MAILBOX: "false" },
    ];
    for (const env of absent) {
      const { app } = createTestApp({ db, clock, env });
      await expectError(await app.request("/v1/dev/mailbox"), 404, "not_found");
    }
    const development = createTestApp({ db, clock, env: { APP_ENV: "development" } });
    expect((await development.app.request("/v1/dev/mailbox")).status).toBe(200);
  });

  it("cannot be turned on in production", () => {
    expect(() => parseConfig({ ...testEnv, APP_ENV: "production", DEV_MAILBOX: "true" })).toThrow(
      /DEV_MAILBOX: shows every user's mail .* not allowed when APP_ENV=production/,
    );
    expect(() => parseConfig({ ...testEnv, APP_ENV: "production" })).not.toThrow();
  });
});
