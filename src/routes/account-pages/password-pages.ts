import type { Context } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { AppEnv } from "../../http/app-env";
import { deliverEmailAfterResponse } from "../../http/email-dispatch";
import { hostedPage } from "../../http/html-page";
import { issuerBase } from "../../http/links";
import { formFields } from "../../http/request-body";
import { createRouter } from "../../http/router";
import { ApiError } from "../../lib/errors";
import { rateLimit } from "../../middleware/rate-limit";
import { accountPageUrl } from "../../services/account-links";
import type { AppRecord } from "../../services/apps";
import { requestPasswordReset, resetPassword } from "../../services/password-recovery";
import { appOfPage, continueUrl } from "./page-kit";

/**
 * The hosted pages of a forgotten password: ask for the link, then choose a new password with
 * it. Plain forms posting to their own URL, no JavaScript; outside the OpenAPI document, as the
 * OAuth page is. `continue` (an authorization request of the app's OAuth page) is where the
 * done page leads, so a sign-in that needed a reset resumes.
 */
export const passwordPagesRouter = createRouter();

const forgotPath = "/apps/:app_name/pages/forgot-password";
const resetPath = "/apps/:app_name/pages/reset-password";

function page(
  c: Context<AppEnv>,
  status: 200 | 400 | 429,
  title: string,
  body: HtmlEscapedString | Promise<HtmlEscapedString>,
) {
  return hostedPage(c, status, title, body);
}

const alert = (message?: string) => (message ? html`<p role="alert">${message}</p>` : "");

function forgotForm(app: AppRecord, error?: string, email = "") {
  return html`<h1>Reset your ${app.display_name} password</h1>
    <p>Enter the email of your account; we will send you a link to choose a new password.</p>
    ${alert(error)}
    <form method="post">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required value="${email}" />
      <button type="submit">Send the link</button>
    </form>`;
}

function resetForm(app: AppRecord, token: string, error?: string) {
  return html`<h1>Choose a new ${app.display_name} password</h1>
    ${alert(error)}
    <form method="post">
      <input type="hidden" name="token" value="${token}" />
      <label for="password">New password</label>
      <input id="password" name="password" type="password" autocomplete="new-password" required />
      <button type="submit">Set the password</button>
    </form>`;
}

const continueLink = (href: string) => html`<nav><a href="${href}">Continue</a></nav>`;

passwordPagesRouter.get(forgotPath, rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  return page(c, 200, "Reset your password", forgotForm(app));
});

passwordPagesRouter.post(forgotPath, rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  const field = await formFields(c);
  const email = field("email").trim().slice(0, 254);
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
    return page(c, 400, "Reset your password", forgotForm(app, "Enter an email address.", email));
  }
  deliverEmailAfterResponse(
    c,
    await requestPasswordReset(c.var.services, app, { email, base: issuerBase(c) }),
  );
  return page(
    c,
    200,
    "Check your email",
    html`<h1>Check your email</h1>
      <p>If an account exists for ${email}, we sent a link to choose a new password. It works for 30 minutes.</p>
      ${continueLink(continueUrl(c, app))}`,
  );
});

passwordPagesRouter.get(resetPath, rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  return page(c, 200, "Choose a new password", resetForm(app, c.req.query("token") ?? ""));
});

passwordPagesRouter.post(resetPath, rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  const field = await formFields(c);
  const token = (field("token") || c.req.query("token") || "").slice(0, 200);
  try {
    await resetPassword(
      c.var.services,
      app,
      { token, password: field("password").slice(0, 1024) },
      "password",
    );
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "validation_error") {
      const reasons = (error.options.details ?? []).map((detail) => detail.reason).join("; ");
      return page(
        c,
        400,
        "Choose a new password",
        resetForm(app, token, `The password ${reasons}.`),
      );
    }
    if (error.code === "rate_limited") {
      return page(
        c,
        429,
        "Choose a new password",
        resetForm(app, token, "Too many attempts. Wait a minute and try again."),
      );
    }
    if (error.code === "invalid_request") {
      return page(
        c,
        400,
        "Link expired",
        html`<h1>This link does not work</h1>
          ${alert(error.message)}
          <nav><a href="${accountPageUrl(issuerBase(c), app, "forgot-password")}">Send a new link</a></nav>`,
      );
    }
    throw error;
  }
  return page(
    c,
    200,
    "Password changed",
    html`<h1>Your password is changed</h1>
      <p>Sign in with your new password. You were signed out everywhere else.</p>
      ${continueLink(continueUrl(c, app))}`,
  );
});
