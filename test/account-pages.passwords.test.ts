import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createTestApp, createTestClock } from "./support/app";
import { databaseBackends } from "./support/backends";
import { readJson } from "./support/http";
import { createTenant, PASSWORD, send } from "./support/identity";
import { latestMessageTo, messagesTo, tokenIn } from "./support/mailbox";

const NEW_PASSWORD = "chosen on the page";

const postForm = (app: App, path: string, fields: Record<string, string>) =>
  app.request(path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });

describe.each(databaseBackends("hosted password pages"))("password pages on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  const clock = createTestClock();
  const email = "reader@pages.test";

  beforeAll(async () => {
    const opened = await backend.open();
    db = opened.db;
    dispose = opened.dispose;
    ({ app } = createTestApp({ db, clock, env: { DEV_MAILBOX: "true" } }));
    await createTenant(app, "pages");
  });
  afterAll(() => dispose());

  it("asks for the address, mails the link, and sets the password from the reset page", async () => {
    const form = await app.request("/v1/apps/pages/pages/forgot-password");
    expect(form.status).toBe(200);
    expect(form.headers.get("content-type")).toMatch(/^text\/html/);
    expect(form.headers.get("cache-control")).toBe("no-store");
    const formHtml = await form.text();
    expect(formHtml).toContain('<form method="post">');
    expect(formHtml).not.toContain("<script");

    const sent = await postForm(app, "/v1/apps/pages/pages/forgot-password", { email });
    expect(sent.status).toBe(200);
    const sentHtml = await sent.text();
    expect(sentHtml).toContain("If an account exists for reader@pages.test, we sent a link");
    // An unknown address gets the same page (its own address echoed), and no mail.
    const unknown = await postForm(app, "/v1/apps/pages/pages/forgot-password", {
      email: "nobody@pages.test",
    });
    expect((await unknown.text()).replace("nobody@pages.test", email)).toBe(sentHtml);
    expect(await messagesTo(db, "nobody@pages.test")).toEqual([]);

    const mail = await latestMessageTo(db, email, "password_reset");
    const token = tokenIn(mail, "pwr_");
    const link = new URL(/http:\/\/\S+reset-password\?token=\S+/.exec(mail.text_body ?? "")![0]);
    const page = await app.request(link.pathname + link.search);
    expect(page.status).toBe(200);
    const pageHtml = await page.text();
    expect(pageHtml).toContain(`<input type="hidden" name="token" value="${token}" />`);
    expect(pageHtml).toContain('type="password"');

    // A password the policy refuses shows the form again, with the reason; the link still works.
    const weak = await postForm(app, link.pathname + link.search, { token, password: "short" });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain("The password must be at least 10 characters.");

    const done = await postForm(app, link.pathname + link.search, {
      token,
      password: NEW_PASSWORD,
    });
    expect(done.status).toBe(200);
    const doneHtml = await done.text();
    expect(doneHtml).toContain("Your password is changed");
    expect(doneHtml).toContain('<a href="http://heimdall.test/#app=pages">Continue</a>');

    clock.advance(1_000);
    const signIn = (password: string) =>
      send(app, "POST", "/v1/apps/pages/tokens", {
        body: { grant_type: "password", email, password },
      });
    expect((await signIn(PASSWORD)).status).toBe(400);
    expect((await signIn(NEW_PASSWORD)).status).toBe(200);

    // Spent: the page says so and offers a new link.
    const again = await postForm(app, link.pathname + link.search, {
      token,
      password: "another fine passphrase",
    });
    expect(again.status).toBe(400);
    const againHtml = await again.text();
    expect(againHtml).toContain("The link is invalid or has expired");
    expect(againHtml).toContain('href="http://heimdall.test/v1/apps/pages/pages/forgot-password"');
  });

  it("leads back to the OAuth page only when continue names it", async () => {
    const own = "/v1/apps/pages/oauth/authorize?client_id=abc&state=x";
    const forgot = (target: string) =>
      postForm(app, `/v1/apps/pages/pages/forgot-password?continue=${encodeURIComponent(target)}`, {
        email: "nobody@pages.test",
      });
    expect(await (await forgot(own)).text()).toContain(
      'href="http://heimdall.test/v1/apps/pages/oauth/authorize?client_id=abc&amp;state=x"',
    );
    for (const foreign of [
      "https://evil.example/v1/apps/pages/oauth/authorize?x",
      "//evil.example/v1/apps/pages/oauth/authorize?",
      "/v1/apps/other/oauth/authorize?client_id=abc",
    ]) {
      const html = await (await forgot(foreign)).text();
      expect(html).not.toContain("evil.example");
      expect(html).toContain('<a href="http://heimdall.test/#app=pages">Continue</a>');
    }
  });

  it("escapes what it echoes and refuses a malformed address with the form", async () => {
    const res = await postForm(app, "/v1/apps/pages/pages/forgot-password", {
      email: '<script>alert(1)</script>"',
    });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).not.toContain("<script>alert");
    expect(html).toContain("Enter an email address.");
    const users = await readJson(
      await send(app, "GET", "/v1/apps/pages/audit-logs?action=password.reset_requested", {
        headers: adminHeaders,
      }),
    );
    expect(users.data).toHaveLength(1);
  });
});
