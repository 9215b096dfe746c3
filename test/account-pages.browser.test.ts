import { createServer } from "node:net";
import * as oidc from "openid-client";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../src/adapters/system-clock";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { hasChromium, launchChromium, loopbackOnly } from "./support/browser";
import { expectError, readJson } from "./support/http";
import { createTenant, PASSWORD, send, type Tenant } from "./support/identity";
import { latestMessageTo, tokenIn } from "./support/mailbox";
import { type Listening, listen } from "./support/server";

const APP = "clinic";
const NEW_PASSWORD = "a brand new passphrase";

/** A free loopback port, so the app can be told its public URL before it listens. */
async function freePort() {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * The account pages reached from the OAuth sign-in page, in Debian's Chromium against the app on
 * a loopback socket: "Create account" → confirm the address from the mailed link → back to the
 * authorization request → the client gets its code; "Forgot password?" by keyboard alone.
 */
describe.skipIf(!hasChromium && process.env.CI !== "true")("the account pages in a browser", () => {
  let db: DatabasePort;
  let app: ReturnType<typeof createTestApp>["app"];
  let server: Listening;
  let base: string;
  let issuer: string;
  let browser: Browser;
  let tenant: Tenant;
  let client: { client_id: string; client_secret: string };
  let redirectUri: string;

  beforeAll(async () => {
    db = await createMemoryDatabase();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    issuer = `${base}/v1/apps/${APP}`;
    // The client's callback is on loopback too; the browser's visit there is answered in the test.
    redirectUri = `http://127.0.0.1:${port}/client/callback`;
    app = createTestApp({
      db,
      clock: systemClock,
      env: { PUBLIC_URL: base, DEV_MAILBOX: "true" },
    }).app;
    server = await listen(app, port);
    tenant = await createTenant(app, APP);
    const settings = await send(app, "PATCH", `/v1/apps/${APP}/settings`, {
      body: { signup: "open", require_email_verification: true },
      headers: adminHeaders,
    });
    expect(settings.status, await settings.clone().text()).toBe(200);
    const created = await send(app, "POST", `/v1/apps/${APP}/oauth/clients`, {
      body: {
        name: "Clinic portal",
        type: "confidential",
        redirect_uris: [redirectUri],
        scopes: ["openid", "email"],
      },
      headers: adminHeaders,
    });
    expect(created.status, await created.clone().text()).toBe(201);
    client = (await readJson(created)).data;
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await db?.close();
  });

  async function startFlow() {
    const config = await oidc.discovery(
      new URL(issuer),
      client.client_id,
      client.client_secret,
      undefined,
      { execute: [oidc.allowInsecureRequests] },
    );
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: "openid email",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    return { config, url, verifier, state, nonce };
  }

  /** A page that may reach loopback only; the client's callback URLs are recorded. */
  async function newPage() {
    const page = await browser.newPage({ viewport: { width: 1024, height: 800 } });
    page.setDefaultTimeout(5000);
    const refused = await loopbackOnly(page);
    const callbacks: string[] = [];
    // The redirect after Allow is a navigation the route handlers do not see (it answers a
    // POST): the request itself is recorded. Nothing serves the client's path; the code is all.
    page.on("request", (request) => {
      if (request.url().startsWith(`${redirectUri}?`)) callbacks.push(request.url());
    });
    return { page, refused, callbacks };
  }

  /** The code reaches the client: exchanged for tokens whose ID token names the user. */
  async function exchange(flow: Awaited<ReturnType<typeof startFlow>>, callback: string) {
    const tokens = await oidc.authorizationCodeGrant(flow.config, new URL(callback), {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    return tokens.claims();
  }

  /** The link of a queued mail to `to` of `kind` that carries a token with `prefix`. */
  async function mailedLink(to: string, kind: string, prefix: string) {
    const message = await latestMessageTo(db, to, kind);
    const token = tokenIn(message, prefix);
    const link = (message.text_body ?? "")
      .match(/https?:\/\/\S+/g)
      ?.find((url) => decodeURIComponent(url).includes(token));
    expect(link, message.text_body ?? "").toBeDefined();
    return link ?? "";
  }

  /** Presses Tab until the focused element's text, label or name is `name`. */
  async function tabTo(page: Page, name: string) {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press("Tab");
      const focused = await page.evaluate(() => {
        const element = document.activeElement as HTMLInputElement | null;
        const label = element?.id ? document.querySelector(`label[for="${element.id}"]`) : null;
        return [element?.textContent?.trim(), label?.textContent?.trim(), element?.name];
      });
      if (focused.some((text) => text === name)) return;
    }
    throw new Error(`Tab never reached ${name}`);
  }

  it("signs a newcomer up from the authorize page; after confirming the mailed link, back to the request, the client gets its code", async () => {
    const email = "patient@clinic.test";
    const flow = await startFlow();
    const { page, refused, callbacks } = await newPage();
    await page.goto(flow.url.href);
    await page.getByRole("heading", { name: "Sign in to clinic" }).waitFor();
    await page.getByRole("link", { name: "Create account" }).click();
    await page.waitForURL((url) => url.pathname === `/v1/apps/${APP}/pages/signup`);
    expect(new URL(page.url()).searchParams.get("continue")).toBe(
      `${flow.url.pathname}${flow.url.search}`,
    );
    await page.getByLabel(/email/i).fill(email);
    for (const input of await page.locator('input[type="password"]').all()) {
      await input.fill(PASSWORD);
    }
    await page.locator('input[type="password"]').last().press("Enter");
    await expect.poll(() => page.locator("main").textContent()).toContain("Check your inbox");

    // Not confirmed yet: the password is right, and still no sign-in.
    await expectError(
      await send(app, "POST", `/v1/apps/${APP}/tokens`, {
        body: { grant_type: "password", email, password: PASSWORD },
      }),
      403,
      "email_not_verified",
    );

    // The mailed link, opened as from a mail client: a page that asks first, then confirms.
    const mailTab = await browser.newPage();
    mailTab.setDefaultTimeout(5000);
    await mailTab.goto(await mailedLink(email, "email_verification", "emv_"));
    await mailTab.getByRole("button", { name: "Confirm my email" }).click();
    const onwards = await mailTab.getByRole("link", { name: "Continue" }).getAttribute("href");
    // Where the app sends its users when done (here the console), or the request itself.
    expect([`${base}/#app=${APP}`, flow.url.href]).toContain(new URL(onwards ?? "", base).href);
    await mailTab.close();

    // The sign-up page's own Continue: back to the authorization request.
    await page.getByRole("link", { name: "Continue" }).click();
    await page.waitForURL((url) => url.href === flow.url.href);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Allow Clinic portal?" }).waitFor();
    await page.getByRole("button", { name: "Allow" }).click();
    await expect.poll(() => callbacks.length).toBe(1);

    const claims = await exchange(flow, callbacks[0] ?? "");
    expect(claims).toMatchObject({ iss: issuer, email, email_verified: true });
    expect(refused).toEqual([]);
    await page.close();
  });

  it("resets a forgotten password from the authorize page by keyboard alone, then signs in with it", async () => {
    // Created by an admin, never confirmed: the reset link proves the address.
    const email = tenant.reader.email;
    const flow = await startFlow();
    const { page, refused, callbacks } = await newPage();
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(flow.url.href);

    await tabTo(page, "Forgot password?");
    await page.keyboard.press("Enter");
    await page.waitForURL((url) => url.pathname === `/v1/apps/${APP}/pages/forgot-password`);
    await tabTo(page, "email");
    await page.keyboard.type(email);
    await page.keyboard.press("Enter");
    await expect
      .poll(() => page.locator("main").textContent())
      .toMatch(/If an account exists for \S+, we sent a link/);
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);

    // The reset link from the mail, by keyboard too: a new password, then done.
    const mailTab = await browser.newPage({ viewport: { width: 375, height: 740 } });
    mailTab.setDefaultTimeout(5000);
    await mailTab.goto(await mailedLink(email, "password_reset", "pwr_"));
    const fields = await mailTab.locator('input[type="password"]').count();
    expect(fields).toBeGreaterThan(0);
    for (let i = 0; i < fields; i++) {
      await mailTab.keyboard.press("Tab");
      while (
        (await mailTab.evaluate(
          () => (document.activeElement as HTMLInputElement | null)?.type,
        )) !== "password"
      ) {
        await mailTab.keyboard.press("Tab");
      }
      await mailTab.keyboard.type(NEW_PASSWORD);
    }
    await mailTab.keyboard.press("Enter");
    await mailTab.getByRole("link", { name: "Continue" }).waitFor();
    await mailTab.close();

    // Back from the forgot-password page to the authorization request, and in with the new password.
    await tabTo(page, "Continue");
    await page.keyboard.press("Enter");
    await page.waitForURL((url) => url.href === flow.url.href);
    await tabTo(page, "email");
    await page.keyboard.type(email);
    await page.keyboard.press("Tab");
    await page.keyboard.type(NEW_PASSWORD);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Allow Clinic portal?" }).waitFor();
    await tabTo(page, "Allow");
    await page.keyboard.press("Enter");
    await expect.poll(() => callbacks.length).toBe(1);

    const claims = await exchange(flow, callbacks[0] ?? "");
    // The reset link proved the address too.
    expect(claims).toMatchObject({ sub: tenant.reader.id, email, email_verified: true });
    // The old password no longer signs in.
    const old = await send(app, "POST", `/v1/apps/${APP}/tokens`, {
      body: { grant_type: "password", email, password: PASSWORD },
    });
    expect(old.status).toBe(400);
    expect(refused).toEqual([]);
    await page.close();
  });
});
