import { readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ADMIN_KEY, testEnv } from "./support/app";
import { hasChromium, launchChromium, loopbackOnly } from "./support/browser";
import { readJson } from "./support/http";
import {
  bearer,
  createTenant,
  overHttp,
  PASSWORD,
  send,
  signIn,
  type Tenant,
} from "./support/identity";
import { type RunningServer, startNodeServer } from "./support/node-server";
import { totpCode } from "./support/totp";

const artifacts = fileURLToPath(new URL("artifacts", import.meta.url));
const consoleSource = fileURLToPath(new URL("../console/src", import.meta.url));

/**
 * The console at `/`, as `npm start` serves it, driven in Debian's Chromium: sign in, register
 * a device, watch a position posted over REST appear on the map and move.
 */
describe.skipIf(!hasChromium && process.env.CI !== "true")("the console", () => {
  let server: RunningServer;
  let browser: Browser;
  let tenant: Tenant;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "heimdall-console-"));
    server = await startNodeServer({
      ...testEnv,
      APP_ENV: "development",
      PUBLIC_URL: "",
      DATA_DIR: dataDir,
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      // No tile server is reachable from this machine: the map must work on a plain background.
      MAP_TILE_URL: "none",
    });
    tenant = await createTenant(overHttp(server.url), "alpha");
    browser = await launchChromium();
    await mkdir(artifacts, { recursive: true });
    // Starting the server and Chromium on a busy 2-core machine.
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A page that records every console error and uncaught exception. */
  async function openConsole() {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(5000);
    const errors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text());
    });
    page.on("pageerror", (error) => errors.push(error.message));
    const tokens: string[] = [];
    page.on("request", (request) => {
      const auth = request.headers().authorization;
      if (auth?.startsWith("Bearer ")) tokens.push(auth.slice(7));
    });
    await page.goto(`${server.url}/?app=alpha`);
    return { page, errors, tokens };
  }

  async function signInAs(page: Page, email: string) {
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
  }

  const markerOf = (page: Page, deviceId: string) =>
    page.locator(`.device-marker[data-device-id="${deviceId}"]`);

  it("signs in, registers a device, and shows a posted position live, then its move within a second", async () => {
    const { page, errors, tokens } = await openConsole();
    await signInAs(page, tenant.admin.email);
    await expect.poll(() => page.getByRole("link", { name: "Devices" }).count()).toBe(1);

    await page.getByRole("link", { name: "Devices" }).click();
    await page.getByLabel("Device name").fill("Jane's bike");
    await page.getByRole("button", { name: "Register device" }).click();
    const secret = (await page.locator(".reveal code.secret").first().textContent()) ?? "";
    expect(secret).toMatch(/^dk_/);
    const urls = await page.locator(".reveal").textContent();
    expect(urls).toContain(`${server.url}/v1/gps/osmand?key=${secret}`);
    expect(urls).toContain(`${server.url}/v1/gps/osmand?key=${secret}&speed_unit=mps&lat={0}`);
    expect(urls).toContain(`${server.url}/v1/gps/overland?access_token=${secret}`);
    expect(urls).toContain(`${server.url}/v1/gps/owntracks`);
    const devices = await readJson(
      await send(overHttp(server.url), "GET", "/v1/devices", {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    const device = devices.data.find((d: { name: string }) => d.name === "Jane's bike");
    expect(device, "the device the console registered is stored").toBeDefined();

    await page.getByRole("link", { name: "Map" }).click();
    await expect.poll(() => page.getByTestId("live-state").textContent()).toBe("live");
    await expect.poll(() => page.locator(".device-list li").count()).toBe(1);
    expect(await markerOf(page, device.id).count(), "no marker before any position").toBe(0);

    const post = (latitude: number, longitude: number, timestamp: string) =>
      send(overHttp(server.url), "POST", "/v1/gps", {
        body: { latitude, longitude, timestamp },
        headers: bearer(secret),
      });
    expect((await post(52.52, 13.405, new Date(Date.now() - 60_000).toISOString())).status).toBe(
      201,
    );
    await markerOf(page, device.id).waitFor({ state: "visible", timeout: 2000 });
    expect(await markerOf(page, device.id).getAttribute("data-lat")).toBe("52.52");

    const moved = await post(52.53, 13.42, new Date().toISOString());
    const ackedAt = Date.now();
    expect(moved.status).toBe(201);
    await page.waitForFunction(
      (id) =>
        document
          .querySelector(`.device-marker[data-device-id="${id}"]`)
          ?.getAttribute("data-lat") === "52.53",
      device.id,
      { timeout: 1000 },
    );
    const moveMs = Date.now() - ackedAt;
    console.log(`[console] marker moved ${moveMs} ms after the position was acknowledged`);
    expect(moveMs).toBeLessThan(1000);
    await expect
      .poll(() => page.locator(".device-list .where").textContent())
      .toContain("52.53000, 13.42000");

    await page.getByLabel("From").fill("2020-01-01T00:00");
    await page.getByRole("button", { name: "Show track" }).click();
    await expect.poll(() => page.locator("#status-bar").textContent()).toContain("2 points");
    expect(await page.locator("path.leaflet-interactive").count()).toBe(1);
    await page.screenshot({ path: join(artifacts, "console-map.png") });

    // Sign-out revokes: the access token the page used no longer works.
    const used = tokens.at(-1) ?? "";
    expect(used).not.toBe("");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    await expect
      .poll(
        async () =>
          (await send(overHttp(server.url), "GET", "/v1/users/me", { headers: bearer(used) }))
            .status,
      )
      .toBe(401);

    expect(errors, "no console errors").toEqual([]);
    await page.close();
  });

  it("asks for the 2FA code when the account has 2FA on, and hides admin pages from a reader", async () => {
    const http = overHttp(server.url);
    const { accessToken } = await signIn(http, "alpha", tenant.reader.email);
    const enrolled = await readJson(
      await send(http, "POST", "/v1/users/me/2fa", { headers: bearer(accessToken) }),
    );
    const secret: string = enrolled.data.secret;
    const verified = await send(http, "POST", "/v1/users/me/2fa/verify", {
      body: { code: totpCode(secret, new Date()) },
      headers: bearer(accessToken),
    });
    expect(verified.status).toBe(200);

    const { page, errors } = await openConsole();
    await signInAs(page, tenant.reader.email);
    await page.getByLabel(/Code from your authenticator/).fill("000000");
    await page.getByRole("button", { name: "Verify" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).not.toBe("");
    // A code is good once per 30 s step: use the next step's, which the server's window accepts.
    await page
      .getByLabel(/Code from your authenticator/)
      .fill(totpCode(secret, new Date(Date.now() + 30_000)));
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("link", { name: "Account" }).waitFor();
    // The reader role holds projects:read only: no map, devices, keys or users.
    expect(await page.getByRole("navigation").getByRole("link").allTextContents()).toEqual([
      "Account",
    ]);
    await expect
      .poll(() => page.locator(".mfa").textContent())
      .toContain("On · 10 recovery codes left");
    // The browser logs the two refusals the flow asks for (mfa_required, the wrong code); nothing else.
    expect(errors).toEqual([
      "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
      "Failed to load resource: the server responded with a status of 400 (Bad Request)",
    ]);
    await page.close();
  });

  it("works from the keyboard on a phone-sized screen: sign in, rotate a device secret, create and revoke an API key", async () => {
    const http = overHttp(server.url);
    const admin = bearer(tenant.admin.accessToken);
    const device = (
      await readJson(
        await send(http, "POST", "/v1/devices", { body: { name: "Van" }, headers: admin }),
      )
    ).data;
    const { page, errors } = await openConsole();
    await page.setViewportSize({ width: 375, height: 740 });
    // Keyboard only: the app name came from ?app=, so focus starts on Email.
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute("name")))
      .toBe("email");
    await page.keyboard.type(tenant.admin.email);
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.getByRole("link", { name: "Devices" }).focus();
    await page.keyboard.press("Enter");
    await page.getByRole("button", { name: "Rotate the secret of Van" }).focus();
    await page.keyboard.press("Enter");
    const rotated = (await page.locator(".reveal code.secret").first().textContent()) ?? "";
    const point = { latitude: 1, longitude: 2, timestamp: new Date().toISOString() };
    expect(
      (await send(http, "POST", "/v1/gps", { body: point, headers: bearer(device.secret) })).status,
    ).toBe(401);
    expect(
      (await send(http, "POST", "/v1/gps", { body: point, headers: bearer(rotated) })).status,
    ).toBe(201);
    expect(
      await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    ).toBe(true);

    await page.getByRole("link", { name: "API keys" }).click();
    await page.getByLabel("Key name").fill("reporting");
    await page.getByRole("button", { name: "Create API key" }).click();
    const key = (await page.locator(".reveal code.secret").textContent()) ?? "";
    expect((await send(http, "GET", "/v1/devices", { headers: bearer(key) })).status).toBe(200);
    await page.getByRole("button", { name: "Revoke the key reporting" }).click();
    await expect
      .poll(() => page.locator("#status-bar").textContent())
      .toBe("Key reporting revoked");
    expect((await send(http, "GET", "/v1/devices", { headers: bearer(key) })).status).toBe(401);
    await page.screenshot({ path: join(artifacts, "console-phone.png"), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it("shows every tenant-controlled string as text in every view: nothing injected, nothing fetched", async () => {
    const http = overHttp(server.url);
    const victim = await createTenant(http, "inject");
    const admin = bearer(victim.admin.accessToken);
    // A payload per field: an element that would fetch `/xss/<field>` and mark the window.
    const payload = (field: string) =>
      `<img class="xss-injected" src="${server.url}/xss/${field}" onerror="window.__xss=1">`;
    const stored = async (res: Response | Promise<Response>) => {
      const answer = await res;
      expect(answer.status, await answer.clone().text()).toBeLessThan(300);
      return (await readJson(answer)).data;
    };
    // Everything the app's users (or anyone signing in) can store that the console shows.
    const device = await stored(
      send(http, "POST", "/v1/devices", { body: { name: payload("device") }, headers: admin }),
    );
    await stored(
      send(http, "POST", "/v1/api-keys", {
        body: { name: payload("key"), role: "api-read-only" },
        headers: admin,
      }),
    );
    // The session list shows the User-Agent a sign-in came with.
    const signedIn = await send(http, "POST", "/v1/apps/inject/tokens", {
      body: { grant_type: "password", email: victim.admin.email, password: PASSWORD },
      headers: { "Content-Type": "application/json", "User-Agent": payload("agent") },
    });
    expect(signedIn.status).toBe(200);
    // Role names and emails are validated: HTML cannot be one.
    for (const [path, body] of [
      ["/v1/roles", { name: payload("role"), permissions: ["devices:read"] }],
      ["/v1/users", { email: `${payload("email")}@inject.test`, password: PASSWORD }],
    ] as const) {
      const refused = await send(http, "POST", path, { body, headers: admin });
      expect(refused.status, path).toBe(400);
    }
    const positioned = await send(http, "POST", "/v1/gps", {
      body: { latitude: 48.85, longitude: 2.35, timestamp: new Date().toISOString() },
      headers: bearer(device.secret),
    });
    expect(positioned.status).toBe(201);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(5000);
    const fetched: string[] = [];
    page.on("request", (request) => {
      if (new URL(request.url()).pathname.startsWith("/xss/")) fetched.push(request.url());
    });
    await page.goto(`${server.url}/?app=inject`);
    await signInAs(page, victim.admin.email);
    await page.getByRole("navigation").getByRole("link").first().waitFor();

    // The views are the console's own navigation; the admin must see every page main.ts declares.
    const links = await page
      .getByRole("navigation")
      .getByRole("link")
      .evaluateAll((all) =>
        all.map((a) => [a.getAttribute("href") ?? "", a.textContent ?? ""] as const),
      );
    const declared = [
      ...readFileSync(join(consoleSource, "main.ts"), "utf8").matchAll(/hash: "([^"]+)"/g),
    ].map((match) => match[1] ?? "");
    expect(declared.length).toBeGreaterThan(0);
    expect(links.map(([hash]) => hash)).toEqual(declared);

    const seen = new Set<string>();
    for (const [view, title] of links) {
      await page.evaluate((hash) => {
        location.hash = hash;
      }, view);
      await expect.poll(() => page.title()).toBe(`${title} · Heimdall`);
      // Loaded: the view in place of "Loading…" (a failure would be a paragraph too).
      await page.locator("main > :not(p)").first().waitFor();
      // The map's tooltips exist only while hovered: open each marker's.
      for (const marker of await page.locator(".device-marker").all()) {
        await marker.hover();
        await expect
          .poll(() => page.locator(".leaflet-tooltip").textContent())
          .toContain(payload("device"));
      }
      const text = (await page.locator("body").textContent()) ?? "";
      for (const field of ["device", "key", "agent"]) {
        if (text.includes(payload(field))) seen.add(`${field} in ${view}`);
      }
      const injected = await page.evaluate(() => ({
        elements: document.querySelectorAll(".xss-injected, [onerror]").length,
        ran: (window as { __xss?: number }).__xss ?? 0,
      }));
      expect(injected, `view ${view}`).toEqual({ elements: 0, ran: 0 });
    }
    // Each payload was drawn, as text, where the console shows it (the map: list and tooltip).
    expect([...seen].sort()).toEqual([
      "agent in #/account",
      "device in #/devices",
      "device in #/map",
      "key in #/keys",
    ]);
    expect(fetched, "requests for a payload's URL").toEqual([]);
    await page.close();
  }, 120_000);

  it("renders /v1/docs and /v1/graphiql from its own files, with every request outside loopback refused", async () => {
    const document = await readJson(await fetch(`${server.url}/v1/openapi.json`));
    const operations = Object.values(document.paths as Record<string, Record<string, unknown>>)
      .flatMap((item) => Object.values(item))
      .filter((operation) => typeof operation === "object" && operation !== null);
    const tags = [
      ...new Set(operations.flatMap((operation) => (operation as { tags?: string[] }).tags ?? [])),
    ];
    expect(tags.length).toBeGreaterThan(5);

    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const refused = await loopbackOnly(page);
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));

    await page.goto(`${server.url}/v1/docs`);
    // Scalar draws the document's title and, in its sidebar, every tag of operations.
    await page.getByRole("heading", { name: "Heimdall API" }).first().waitFor({ timeout: 30_000 });
    const sidebar = (await page.locator("nav, aside").allTextContents()).join(" ");
    expect(tags.filter((tag) => !sidebar.includes(tag))).toEqual([]);

    // GraphiQL asks the API for its schema as it opens: unauthenticated, that is refused.
    const introspected = page.waitForResponse((res) => new URL(res.url()).pathname === "/v1/gql");
    await page.goto(`${server.url}/v1/graphiql`);
    expect((await introspected).status()).toBe(401);
    const editor = page.locator(".graphiql-query-editor .monaco-editor");
    await editor.waitFor({ state: "visible", timeout: 30_000 });
    await editor.click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type("query Devices");
    // Monaco draws spaces as no-break spaces.
    await expect.poll(() => editor.locator(".view-lines").textContent()).toMatch(/query\sDevices/);
    await page.locator(".graphiql-execute-button").waitFor({ state: "visible" });

    expect(refused, "requests that would have left loopback").toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it("serves the console build at / with hashed, immutable assets", async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toContain("text/html");
    const html = await index.text();
    const script = html.match(/src="(\/assets\/[^"]+\.js)"/)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${server.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    expect(asset.headers.get("x-content-type-options")).toBe("nosniff");
  });
});

/**
 * What the console shows comes from the API, and much of it from the app's users: it is drawn
 * as text. No source file of the console may hand a string to an HTML parser.
 */
describe("the console's source", () => {
  const sinks: Array<[string, RegExp]> = [
    ["innerHTML / outerHTML (also as an h() prop)", /\b(inner|outer)HTML\b/],
    ["insertAdjacentHTML", /\binsertAdjacentHTML\b/],
    ["document.write", /\bdocument\.write(ln)?\b/],
    ["createContextualFragment / DOMParser / srcdoc", /createContextualFragment|DOMParser|srcdoc/],
    // Leaflet parses a string content as HTML: tooltips and popups get an element from h().
    [
      "a Leaflet tooltip or popup given anything but h(…)",
      /\.(bindTooltip|bindPopup|setTooltipContent|setPopupContent|setContent)\((?!\s*h\()/,
    ],
    ["L.tooltip / L.popup with content", /\bL\.(tooltip|popup)\(/],
    ["a divIcon's html built from values", /\bhtml:(?!\s*(`[^`$]*`|"[^"]*"|'[^']*'))/],
  ];
  const files = readdirSync(consoleSource, { recursive: true, encoding: "utf8" }).filter((file) =>
    file.endsWith(".ts"),
  );

  it("has source files to check", () => {
    expect(files).toContain("main.ts");
    expect(files.some((file) => file.startsWith("views/"))).toBe(true);
  });

  it.each(files)("%s hands no string to an HTML parser", (file) => {
    const source = readFileSync(join(consoleSource, file), "utf8");
    const found = sinks.filter(([, pattern]) => pattern.test(source)).map(([name]) => name);
    expect(found).toEqual([]);
  });
});
