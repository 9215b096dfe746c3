import type { Context } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { SignUpSchema, VerifyEmailSchema } from "../../db/schema/signup";
import type { AppEnv } from "../../http/app-env";
import { deliverEmailAfterResponse } from "../../http/email-dispatch";
import { hostedPage } from "../../http/html-page";
import { issuerBase } from "../../http/links";
import { formFields } from "../../http/request-body";
import { createRouter } from "../../http/router";
import { ApiError } from "../../lib/errors";
import { rateLimit } from "../../middleware/rate-limit";
import { issuerFor } from "../../services/access-tokens";
import { type AppRecord, settingsOf } from "../../services/apps";
import { verifyEmail } from "../../services/email-address";
import { signUp } from "../../services/signup";
import { appOfPage, continueUrl } from "./page-kit";

/**
 * The hosted sign-up and email-confirmation pages: plain HTML forms posting to their own URL, no
 * JavaScript, the same services as the API. Reached from the OAuth page ("Create account") and
 * from mailed links; outside the OpenAPI document, like the OAuth page.
 */
export const signupPagesRouter = createRouter();

type PageStatus = 200 | 400 | 403 | 429;

function done(c: Context<AppEnv>, app: AppRecord, title: string, message: string) {
  return hostedPage(
    c,
    200,
    title,
    html`<h1>${title}</h1>
      <p>${message}</p>
      <nav><a href="${continueUrl(c, app)}">Continue</a></nav>`,
  );
}

/** A refusal a person can act on, shown on the page; anything else goes to the error handler. */
function shown(error: unknown): { status: PageStatus; message: string } | undefined {
  if (!(error instanceof ApiError)) return undefined;
  switch (error.code) {
    case "validation_error":
      return {
        status: 400,
        message: [error.message, ...(error.options.details ?? []).map((d) => d.reason)].join(": "),
      };
    case "invalid_request":
    case "conflict":
      return { status: 400, message: error.message };
    case "forbidden":
      return { status: 403, message: error.message };
    case "rate_limited":
      return { status: 429, message: "Too many attempts. Wait a minute and try again." };
    default:
      return undefined;
  }
}

function signUpForm(
  app: AppRecord,
  values: { email?: string; display_name?: string; invite_token?: string },
  error?: string,
): HtmlEscapedString | Promise<HtmlEscapedString> {
  const invited = settingsOf(app).signup === "invite_only";
  return html`<h1>Create your ${app.display_name} account</h1>
    ${error ? html`<p role="alert">${error}</p>` : ""}
    <form method="post">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="email" required value="${values.email ?? ""}" />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="new-password" required />
      <label for="display_name">Name (optional)</label>
      <input id="display_name" name="display_name" autocomplete="name" value="${values.display_name ?? ""}" />
      ${
        invited
          ? html`<label for="invite_token">Invite code</label>
            <input id="invite_token" name="invite_token" required value="${values.invite_token ?? ""}" />`
          : ""
      }
      <button type="submit">Create account</button>
    </form>`;
}

signupPagesRouter.get("/apps/:app_name/pages/signup", rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  if (settingsOf(app).signup === "closed" || app.status !== "active") {
    return hostedPage(
      c,
      403,
      "Sign up",
      html`<h1>Sign-up is closed</h1>
        <p role="alert">${app.display_name} does not take new accounts here.</p>`,
    );
  }
  return hostedPage(
    c,
    200,
    "Sign up",
    signUpForm(app, { invite_token: c.req.query("invite_token") ?? "" }),
  );
});

signupPagesRouter.post("/apps/:app_name/pages/signup", rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  const field = await formFields(c);
  const values = {
    email: field("email").slice(0, 254),
    display_name: field("display_name").slice(0, 200),
    invite_token: field("invite_token").slice(0, 200),
  };
  const again = (status: PageStatus, message: string) =>
    hostedPage(c, status, "Sign up", signUpForm(app, values, message));
  const parsed = SignUpSchema.safeParse({
    email: values.email,
    password: field("password"),
    ...(values.display_name ? { display_name: values.display_name } : {}),
    ...(values.invite_token ? { invite_token: values.invite_token } : {}),
  });
  if (!parsed.success) return again(400, "Enter an email address and a password.");
  try {
    const base = issuerBase(c);
    const result = await signUp(c.var.services, app, parsed.data, {
      base,
      issuer: issuerFor(base, app.name),
    });
    deliverEmailAfterResponse(c, result.mail);
    return result.status === "signed_in"
      ? done(c, app, "Account created", "Your account is ready; you can sign in now.")
      : done(
          c,
          app,
          "Check your inbox",
          `We sent a mail to ${parsed.data.email}. Follow its link to confirm your address.`,
        );
  } catch (error) {
    const refusal = shown(error);
    if (!refusal) throw error;
    return again(refusal.status, refusal.message);
  }
});

function confirmForm(app: AppRecord, token: string) {
  return html`<h1>Confirm your email</h1>
    <p>Confirm the address of your ${app.display_name} account.</p>
    <form method="post">
      <input type="hidden" name="token" value="${token}" />
      <button type="submit">Confirm my email</button>
    </form>`;
}

const invalidLinkPage = (c: Context<AppEnv>, status: PageStatus, message: string) =>
  hostedPage(
    c,
    status,
    "Confirm your email",
    html`<h1>This link cannot be used</h1>
      <p role="alert">${message}</p>`,
  );

// GET only shows a button: mail scanners that fetch links must not spend the token.
signupPagesRouter.get("/apps/:app_name/pages/verify-email", rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  const token = c.req.query("token") ?? "";
  if (!VerifyEmailSchema.safeParse({ token }).success) {
    return invalidLinkPage(c, 400, "The link is invalid or has expired");
  }
  return hostedPage(c, 200, "Confirm your email", confirmForm(app, token));
});

signupPagesRouter.post("/apps/:app_name/pages/verify-email", rateLimit("sign-in"), async (c) => {
  const app = await appOfPage(c);
  const field = await formFields(c);
  const parsed = VerifyEmailSchema.safeParse({ token: field("token") });
  if (!parsed.success) return invalidLinkPage(c, 400, "The link is invalid or has expired");
  try {
    const user = await verifyEmail(c.var.services, app, parsed.data.token);
    return done(c, app, "Email confirmed", `${user.email} is confirmed. Thank you.`);
  } catch (error) {
    const refusal = shown(error);
    if (!refusal) throw error;
    return invalidLinkPage(c, refusal.status, refusal.message);
  }
});
