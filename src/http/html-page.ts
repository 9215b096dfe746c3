import type { Context } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { AppEnv } from "./app-env";

/**
 * A page Heimdall serves itself (the OAuth sign-in, the account pages reached from mailed links):
 * plain HTML forms, no scripts, no frames, not cached, not indexed, no Referer sent onwards (the
 * URL may carry a one-time token).
 */
export function hostedPage(
  c: Context<AppEnv>,
  status: 200 | 400 | 401 | 403 | 404 | 429,
  title: string,
  body: HtmlEscapedString | Promise<HtmlEscapedString>,
) {
  c.header("Cache-Control", "no-store");
  c.header(
    "Content-Security-Policy",
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  );
  c.header("Referrer-Policy", "no-referrer");
  c.header("X-Robots-Tag", "noindex");
  return c.html(
    html`<!doctype html>
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <meta name="robots" content="noindex" />
          <title>${title}</title>
          <style>
            body { font: 16px/1.5 system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; padding: 0 1rem; }
            label { display: block; margin-top: 1rem; }
            input { display: block; width: 100%; padding: .5rem; font: inherit; box-sizing: border-box; }
            button { margin-top: 1.5rem; padding: .6rem 1.2rem; font: inherit; }
            [role=alert] { color: #a00; }
            nav a { display: inline-block; margin: 1rem 1rem 0 0; }
          </style>
        </head>
        <body>
          <main>${body}</main>
        </body>
      </html>`,
    status,
  );
}
