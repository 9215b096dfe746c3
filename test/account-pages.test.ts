import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { createTestApp } from "./support/app";
import { databaseBackends } from "./support/backends";
import { createTenant } from "./support/identity";
import { latestMessageTo, tokenIn } from "./support/mailbox";
import { auditActionsAbout, configure, postForm, storedUser } from "./support/signup";

const STRONG = "a long enough passphrase";

describe.each(databaseBackends("hosted sign-up pages"))("sign-up pages on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  let appId: string;

  beforeAll(async () => {
    const opened = await backend.open();
    ({ db, dispose } = opened);
    ({ app } = createTestApp({ db, env: { DEV_MAILBOX: "true" } }));
    appId = (await createTenant(app, "pages")).app.id;
    await createTenant(app, "shut");
    await configure(app, "pages", {
      signup: "open",
      require_email_verification: true,
      signup_email_domains: ["acme.co"],
    });
  });
  afterAll(() => dispose());

  it("shows the sign-up form as a script-free, uncached page; closed apps get 403", async () => {
    const page = await app.request("/v1/apps/pages/pages/signup");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-store");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const text = await page.text();
    expect(text).toContain('<form method="post">');
    expect(text).toContain('name="email"');
    expect(text).toContain('name="password"');
    expect(text).not.toContain("<script");
    const closed = await app.request("/v1/apps/shut/pages/signup");
    expect(closed.status).toBe(403);
    expect(await closed.text()).toContain("Sign-up is closed");
  });

  it("signs up by form: 'Check your inbox', then the mailed link's page confirms the email on POST only", async () => {
    const posted = await postForm(app, "/v1/apps/pages/pages/signup", {
      email: "page@acme.co",
      password: STRONG,
      display_name: "Page <b>User</b>",
    });
    expect(posted.status).toBe(200);
    const answer = await posted.text();
    expect(answer).toContain("Check your inbox");
    expect(answer).toContain('href="http://heimdall.test/#app=pages"');
    const user = await storedUser(db, appId, "page@acme.co");
    expect(user).toMatchObject({ display_name: "Page <b>User</b>", email_verified_at: null });

    const mail = await latestMessageTo(db, "page@acme.co", "email_verification");
    const token = tokenIn(mail, "emv_");
    const path = `/v1/apps/pages/pages/verify-email?token=${encodeURIComponent(token)}`;
    const shown = await app.request(path);
    expect(shown.status).toBe(200);
    const form = await shown.text();
    expect(form).toContain("Confirm my email");
    expect(form).toContain(`value="${token}"`);
    // Looking at the page (as a mail scanner does) spends nothing.
    expect((await storedUser(db, appId, "page@acme.co"))?.email_verified_at).toBeNull();

    const confirmed = await postForm(app, path, { token });
    expect(confirmed.status).toBe(200);
    expect(await confirmed.text()).toContain("Email confirmed");
    expect((await storedUser(db, appId, "page@acme.co"))?.email_verified_at).not.toBeNull();
    expect(await auditActionsAbout(db, user!.id)).toContain("email.verified");

    const again = await postForm(app, path, { token });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain("The link is invalid or has expired");
  });

  it("shows refusals on the form: a domain off the list, a weak password (400)", async () => {
    const offDomain = await postForm(app, "/v1/apps/pages/pages/signup", {
      email: "eve@evil.example",
      password: STRONG,
    });
    expect(offDomain.status).toBe(400);
    const text = await offDomain.text();
    expect(text).toContain("not open to this email");
    expect(text).toContain('value="eve@evil.example"');
    const weak = await postForm(app, "/v1/apps/pages/pages/signup", {
      email: "weak@acme.co",
      password: "short",
    });
    expect(weak.status).toBe(400);
    expect(await weak.text()).toContain("policy");
    expect(await storedUser(db, appId, "weak@acme.co")).toBeUndefined();
  });

  it("returns to the OAuth request named by continue, and ignores any other target", async () => {
    const back = "/v1/apps/pages/oauth/authorize?client_id=ocl_x&response_type=code";
    const ok = await postForm(
      app,
      `/v1/apps/pages/pages/signup?continue=${encodeURIComponent(back)}`,
      { email: "back@acme.co", password: STRONG },
    );
    expect(await ok.text()).toContain(`href="http://heimdall.test${back.replace("&", "&amp;")}"`);
    const evil = await postForm(
      app,
      `/v1/apps/pages/pages/signup?continue=${encodeURIComponent("https://evil.example/")}`,
      { email: "evil@acme.co", password: STRONG },
    );
    const text = await evil.text();
    expect(text).not.toContain("evil.example/");
    expect(text).toContain('href="http://heimdall.test/#app=pages"');
  });

  it("a missing or malformed token shows the invalid-link page", async () => {
    const page = await app.request("/v1/apps/pages/pages/verify-email");
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("This link cannot be used");
  });
});
