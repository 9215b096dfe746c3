import { existsSync } from "node:fs";
import { chromium, type Page } from "playwright-core";

export const chromiumPath = "/usr/bin/chromium";
export const hasChromium = existsSync(chromiumPath);

/** Debian's Chromium, headless, as root in a container with no network but loopback. */
export const launchChromium = () =>
  chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/;

/**
 * Aborts every request of `page` that would leave loopback (`data:` and `blob:` URLs stay in
 * the page) and records it: the returned list is empty when the page needed nothing else.
 */
export async function loopbackOnly(page: Page) {
  const refused: string[] = [];
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || url.protocol === "blob:" || LOOPBACK.test(url.hostname)) {
      return route.continue();
    }
    refused.push(url.href);
    return route.abort("blockedbyclient");
  });
  return refused;
}
