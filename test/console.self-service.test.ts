import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { adminHeaders, TEST_ADMIN_KEY, testEnv } from "./support/app";
import { hasChromium, launchChromium } from "./support/browser";
import { readJson } from "./support/http";
import { bearer, overHttp, PASSWORD, send, signIn } from "./support/identity";
import { codeIn } from "./support/mailbox";
import { type RunningServer, startNodeServer } from "./support/node-server";

const artifacts = fileURLToPath(new URL("artifacts", import.meta.url));
const APP = "selfserve";
const NEW_PASSWORD = "a brand new passphrase";

interface MailboxMessage {
  id: string;
  kind: string;
  to: string;
  subject: string;
  text: string | null;
}

/**
 * The console's self-service views, as `npm start` serves them in development (the mailbox on),
 * driven in Debian's Chromium: sign-up with the verification link opened from the Mailbox view,
 * forgot password, change password, sign-in with an emailed code or its link.
 */
describe.skipIf(!hasChromium && process.env.CI !== "true")("the console's self-service", () => {
  let server: RunningServer;
  let browser: Browser;
  let dataDir: string;
  const http = () => overHttp(server.url);

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "heimdall-self-service-"));
    server = await startNodeServer({
      ...testEnv,
      APP_ENV: "development",
      PUBLIC_URL: "",
      DATA_DIR: dataDir,
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      MAP_TILE_URL: "none",
      DEV_MAILBOX: "true",
    });
    const created = await send(http(), "POST", "/v1/apps", {
      body: { name: APP, display_name: "Self Serve" },
      headers: adminHeaders,
    });
    expect(created.status, await created.clone().text()).toBe(201);
    const settings = await send(http(), "PATCH", `/v1/apps/${APP}/settings`, {
      body: {
        signup: "open",
        // Whoever sets the templates writes the mail: the mailbox shows it as text.
        email_templates: {
          email_verification: {
            text: 'Hello <img class="xss-injected" src="/xss/mail" onerror="window.__xss=1">\nNot a link: javascript:alert(1)\nConfirm: {{link}}',
          },
        },
      },
      headers: adminHeaders,
    });
    expect(settings.status, await settings.clone().text()).toBe(200);
    browser = await launchChromium();
    await mkdir(artifacts, { recursive: true });
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The console for the app, recording errors and the access tokens the page sends. */
  async function openConsole(width = 1280) {
    const page = await browser.newPage({ viewport: { width, height: 800 } });
    page.setDefaultTimeout(5000);
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    const tokens: string[] = [];
    page.on("request", (request) => {
      const auth = request.headers().authorization;
      if (auth?.startsWith("Bearer ")) tokens.push(auth.slice(7));
    });
    await page.goto(`${server.url}/?app=${APP}`);
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    return { page, errors, tokens };
  }

  /** A user an admin created, with the password PASSWORD. */
  async function createUser(email: string) {
    const res = await send(http(), "POST", `/v1/apps/${APP}/users`, {
      body: { email, password: PASSWORD },
      headers: adminHeaders,
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await readJson(res)).data as { id: string };
  }

  const me = async (token: string) => {
    const res = await send(http(), "GET", "/v1/users/me", { headers: bearer(token) });
    return { status: res.status, body: res.status === 200 ? await readJson(res) : undefined };
  };

  /** The mail queued to an address (of a kind), newest first, from the development mailbox. */
  async function mailTo(to: string, kind?: string) {
    const res = await fetch(
      `${server.url}/v1/dev/mailbox?${new URLSearchParams({ app: APP, to })}`,
    );
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: MailboxMessage[] };
    return data.filter(
      (m) => m.to.toLowerCase() === to.toLowerCase() && (!kind || m.kind === kind),
    );
  }
  async function waitForMail(to: string, kind: string, count = 1) {
    await expect.poll(async () => (await mailTo(to, kind)).length).toBeGreaterThanOrEqual(count);
    const [latest] = await mailTo(to, kind);
    return latest!;
  }

  /** Opens the message to `to` in the Mailbox view and clicks its link that contains `part`. */
  async function followMailLink(page: Page, to: string, part: string) {
    await page
      .getByRole("button", { name: new RegExp(`^Open the message .* to ${escapeRegExp(to)}$`) })
      .first()
      .click();
    const link = page.locator(".mail-text a").filter({ hasText: part });
    await link.waitFor();
    const [tab] = await Promise.all([page.waitForEvent("popup"), link.click()]);
    await tab.waitForLoadState();
    tab.setDefaultTimeout(5000);
    return tab;
  }

  /** Signs in on the console's password form (the app name already filled). */
  async function signInOnForm(page: Page, email: string, password: string) {
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("link", { name: "Account", exact: true }).waitFor();
  }

  it("signs a newcomer up, shows the verification mail as text in the Mailbox, and the confirmed address ends verified", async () => {
    const email = "newcomer@selfserve.test";
    const { page, errors, tokens } = await openConsole();
    await page.getByRole("link", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Create an account" }).waitFor();
    expect(await page.getByLabel("App").inputValue()).toBe(APP);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByLabel("Display name (optional)").fill("Nina Newcomer");
    await page.getByRole("button", { name: "Create account" }).click();
    // Verification not required: signed in at once (201), as a password sign-in does.
    await page.getByRole("link", { name: "Account", exact: true }).waitFor();
    const token = tokens.at(-1) ?? "";
    const before = await me(token);
    expect(before.status).toBe(200);
    expect(before.body.data).toMatchObject({
      email,
      display_name: "Nina Newcomer",
      email_verified: false,
    });

    await page.locator("a.tool-link", { hasText: "Mailbox" }).click();
    await expect.poll(() => page.title()).toBe("Mailbox · Heimdall");
    const tab = await followMailLink(page, email, "/pages/verify-email?token=emv_");
    // The mail's text is drawn as text: its HTML shown, not run; a javascript: URL not linked.
    const mail = (await page.locator(".mail-text").textContent()) ?? "";
    expect(mail).toContain('<img class="xss-injected"');
    expect(mail).toContain("javascript:alert(1)");
    expect(
      await page.evaluate(() => ({
        injected: document.querySelectorAll(".xss-injected, [onerror]").length,
        ran: (window as { __xss?: number }).__xss ?? 0,
        hrefs: [...document.querySelectorAll(".mail-text a")].map((a) => a.getAttribute("href")),
      })),
    ).toEqual({
      injected: 0,
      ran: 0,
      hrefs: [
        expect.stringMatching(
          /^https?:\/\/[^/]+\/v1\/apps\/selfserve\/pages\/verify-email\?token=emv_/,
        ),
      ],
    });

    // A mail scanner's GET does not spend the link: the page asks first.
    expect((await me(token)).body.data.email_verified).toBe(false);
    await tab.getByRole("button", { name: "Confirm my email" }).click();
    await tab.getByRole("link", { name: "Continue" }).click();
    // Back in the console for the app: the fragment read and removed, the app filled in.
    await tab.getByRole("button", { name: "Sign in" }).waitFor();
    expect(new URL(tab.url()).hash).toBe("");
    expect(await tab.getByLabel("App").inputValue()).toBe(APP);
    await signInOnForm(tab, email, PASSWORD);

    expect((await me(token)).body.data.email_verified).toBe(true);
    expect(errors).toEqual([]);
    await tab.close();
    await page.close();
  });

  it("sends a reset link from Forgot password? with the same answer for an unknown address, and the reset password signs in", async () => {
    const email = "forgetful@selfserve.test";
    await createUser(email);
    const { page, errors } = await openConsole();
    await page.getByRole("link", { name: "Forgot password?" }).click();
    await page.getByRole("heading", { name: "Forgot your password?" }).waitFor();
    const ask = async (address: string) => {
      await page.getByLabel("Email").fill(address);
      await page.getByRole("button", { name: "Send reset link" }).click();
      await expect
        .poll(() => page.locator(".done").textContent())
        .toBe("If an account exists, we sent a link to reset the password.");
      expect(await page.getByRole("alert").textContent()).toBe("");
      expect(await page.locator("#announcer").textContent()).toBe(
        "If an account exists, we sent a link to reset the password.",
      );
    };
    await ask("nobody@selfserve.test");
    await ask(email);
    expect(await mailTo("nobody@selfserve.test")).toEqual([]);
    await waitForMail(email, "password_reset");

    await page.getByRole("link", { name: "Back to sign in" }).click();
    await page.getByRole("link", { name: "Mailbox" }).click();
    await page.getByRole("heading", { name: "Mailbox" }).waitFor();
    const tab = await followMailLink(page, email, "/pages/reset-password?token=pwr_");
    for (const input of await tab.locator('input[type="password"]').all()) {
      await input.fill(NEW_PASSWORD);
    }
    await tab.locator('input[type="password"]').last().press("Enter");
    await tab.getByRole("link", { name: "Continue" }).click();
    await tab.getByRole("button", { name: "Sign in" }).waitFor();
    await signInOnForm(tab, email, NEW_PASSWORD);

    const old = await send(http(), "POST", `/v1/apps/${APP}/tokens`, {
      body: { grant_type: "password", email, password: PASSWORD },
    });
    expect(old.status).toBe(400);
    expect(errors).toEqual([]);
    await tab.close();
    await page.close();
  });

  it("changes the password from the Account view: the console's session stays, the others end", async () => {
    const email = "changer@selfserve.test";
    await createUser(email);
    const elsewhere = await signIn(http(), APP, email);
    const { page, errors, tokens } = await openConsole();
    await signInOnForm(page, email, PASSWORD);
    await page.getByRole("link", { name: "Account", exact: true }).click();
    const form = page.getByRole("form", { name: "Change password" });
    await form.getByLabel("Current password").fill("not my password");
    await form.getByLabel("New password").fill(NEW_PASSWORD);
    await form.getByRole("button", { name: "Change password" }).click();
    await expect.poll(() => form.getByRole("alert").textContent()).not.toBe("");
    expect((await signIn(http(), APP, email)).accessToken).not.toBe("");

    await form.getByLabel("Current password").fill(PASSWORD);
    await form.getByLabel("New password").fill(NEW_PASSWORD);
    await form.getByRole("button", { name: "Change password" }).click();
    await expect
      .poll(() => form.locator(".done").textContent())
      .toBe("Password changed. Your other sessions were ended.");
    await expect.poll(() => page.locator("#status-bar").textContent()).toBe("Password changed");
    expect(await form.getByRole("alert").textContent()).toBe("");

    expect((await me(tokens.at(-1) ?? "")).status).toBe(200);
    const refreshed = await send(http(), "POST", `/v1/apps/${APP}/tokens/refresh`, {
      body: { refresh_token: elsewhere.refreshToken },
    });
    expect(refreshed.status).toBe(400);
    expect((await me(elsewhere.accessToken)).status).toBe(401);
    await signIn(http(), APP, email, NEW_PASSWORD);
    expect(errors).toEqual([]);
    await page.close();
  });

  /** Presses Tab until the focused element's text (or accessible label) is `name`. */
  async function tabTo(page: Page, name: string) {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(
        () =>
          document.activeElement?.getAttribute("aria-label") ??
          document.activeElement?.textContent?.trim(),
      );
      if (focused === name) return;
    }
    throw new Error(`Tab never reached ${name}`);
  }

  it("signs in with an emailed code from the keyboard alone on a phone-sized screen, and with the mail's link", async () => {
    const email = "coder@selfserve.test";
    const user = await createUser(email);
    const { page, errors, tokens } = await openConsole(375);
    await tabTo(page, "Sign in with an email code");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Sign in with an email code" }).waitFor();
    // The app came from ?app=: focus is on Email.
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute("name")))
      .toBe("email");
    await page.keyboard.type(email);
    await page.keyboard.press("Enter");
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute("name")))
      .toBe("code");
    const mail = await waitForMail(email, "email_otp");
    await page.keyboard.type(codeIn({ text_body: mail.text }));
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: "Account", exact: true }).waitFor();
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);
    const signedIn = await me(tokens.at(-1) ?? "");
    expect(signedIn.body.data).toMatchObject({ id: user.id, email_verified: true });
    await page.screenshot({ path: join(artifacts, "console-email-code.png"), fullPage: true });
    await page.close();

    // The mail's link: the console at #app=…&email_token=otl_…, exchanged once and cleared.
    const started = await send(http(), "POST", `/v1/apps/${APP}/otp/start`, {
      body: { email, channel: "link" },
    });
    expect(started.status).toBe(202);
    const second = await waitForMail(email, "email_otp", 2);
    const link = /https?:\/\/\S+#app=[^\s&]+&email_token=otl_[A-Za-z0-9_%-]+/.exec(
      second.text ?? "",
    )?.[0];
    expect(link, second.text ?? "").toBeDefined();
    const linked = await browser.newPage();
    linked.setDefaultTimeout(5000);
    const linkTokens: string[] = [];
    linked.on("request", (request) => {
      const auth = request.headers().authorization;
      if (auth?.startsWith("Bearer ")) linkTokens.push(auth.slice(7));
    });
    await linked.goto(link ?? "");
    await linked.getByRole("link", { name: "Account", exact: true }).waitFor();
    expect(new URL(linked.url()).hash).not.toContain("email_token");
    expect((await me(linkTokens.at(-1) ?? "")).body.data.id).toBe(user.id);
    // Once: opened again, the link signs nobody in.
    const again = await browser.newPage();
    again.setDefaultTimeout(5000);
    await again.goto(link ?? "");
    await expect
      .poll(() => again.getByRole("alert").textContent())
      .toBe("The code is not right or has expired");
    expect(errors).toEqual([]);
    await linked.close();
    await again.close();
  });

  it("tells a newcomer to check the inbox when the app wants the address confirmed, and says so when sign-up is closed", async () => {
    for (const [name, settings] of [
      ["confirming", { signup: "open", require_email_verification: true }],
      ["closedapp", {}],
    ] as const) {
      const created = await send(http(), "POST", "/v1/apps", {
        body: { name, display_name: name },
        headers: adminHeaders,
      });
      expect(created.status).toBe(201);
      const changed = await send(http(), "PATCH", `/v1/apps/${name}/settings`, {
        body: settings,
        headers: adminHeaders,
      });
      expect(changed.status).toBe(200);
    }
    const config = await readJson(await fetch(`${server.url}/v1/console/config`));
    expect(config.data.dev_mailbox).toBe(true);

    const signUpOn = async (appName: string, email: string) => {
      const page = await browser.newPage();
      page.setDefaultTimeout(5000);
      await page.goto(`${server.url}/?app=${appName}#/signup`);
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Create account" }).click();
      return page;
    };
    const confirming = await signUpOn("confirming", "careful@confirming.test");
    await expect
      .poll(() => confirming.locator(".done").textContent())
      .toBe("Check your inbox: we sent a link to confirm your email address.");
    expect(await confirming.getByRole("alert").textContent()).toBe("");
    // Not signed in: still the form, no console.
    expect(await confirming.getByRole("button", { name: "Create account" }).count()).toBe(1);
    await confirming.close();

    const closed = await signUpOn("closedapp", "someone@closedapp.test");
    await expect
      .poll(() => closed.getByRole("alert").textContent())
      .toBe("Sign-up is closed for this app");
    expect(await closed.locator(".done").textContent()).toBe("");
    await closed.close();
  });
});

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
