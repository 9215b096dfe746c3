import type { Context } from "hono";
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { AppEnv } from "../../http/app-env";
import { hostedPage } from "../../http/html-page";
import { issuerBase } from "../../http/links";
import { formFields } from "../../http/request-body";
import { createRouter } from "../../http/router";
import { ApiError } from "../../lib/errors";
import { authenticate } from "../../middleware/auth";
import { rateLimit } from "../../middleware/rate-limit";
import { issuerFor } from "../../services/access-tokens";
import { type AppRecord, findAppByName, settingsOf } from "../../services/apps";
import { checkSecondFactor } from "../../services/mfa";
import {
  AuthorizationPageError,
  AuthorizationRedirect,
  type AuthorizationTransaction,
  alreadyGranted,
  approve,
  assertRedirectable,
  errorRedirect,
  openTransaction,
  sealTransaction,
  spendTransaction,
  startAuthorization,
  transactionId,
} from "../../services/oauth";
import { findClient } from "../../services/oauth-clients";
import { userClaims } from "../../services/oauth-code-exchange";
import { authenticateWithPassword } from "../../services/sign-in";
import { emailVerificationRefusal } from "../../services/sign-in-rules";
import { findUser } from "../../services/users";

/**
 * The authorization endpoint's pages: a plain HTML form to sign in (email, password, and the
 * authenticator code when 2FA is on), then allow or deny; no JavaScript. What the first request
 * asked is carried, encrypted, in the forms. Also the OpenID Connect userinfo endpoint.
 */
export const authorizeRouter = createRouter();

async function appAndIssuer(c: Context<AppEnv>) {
  const app = await findAppByName(c.var.services, c.req.param("app_name") ?? "");
  return { app, issuer: issuerFor(issuerBase(c), app.name) };
}

authorizeRouter.get("/apps/:app_name/oauth/authorize", rateLimit("sign-in"), async (c) => {
  const { app, issuer } = await appAndIssuer(c);
  return answer(c, async () => {
    const { client, transaction } = await startAuthorization(
      c.var.services,
      app,
      c.req.query(),
      issuer,
    );
    const url = new URL(c.req.url);
    const back = `${url.pathname}${url.search}`;
    return page(c, 200, signInForm(app, client.name, await seal(c, transaction), back));
  });
});

authorizeRouter.post("/apps/:app_name/oauth/authorize", rateLimit("sign-in"), async (c) => {
  const { app, issuer } = await appAndIssuer(c);
  const field = await formFields(c);
  const ctx = c.var.services;
  return answer(c, async () => {
    const transaction = await openTransaction(ctx, field("tx"));
    const client = await findClient(ctx, app.id, transaction.client_id);
    assertRedirectable(client, transaction.redirect_uri);
    const decision = field("decision");
    if (decision) {
      if (!transaction.user_id) throw new AuthorizationPageError("Sign in first.");
      await spendTransaction(ctx, transaction);
      if (decision !== "allow") {
        throw errorRedirect(transaction, issuer, "access_denied", "The user did not allow it");
      }
      return c.redirect(await approve(ctx, app, transaction, issuer), 302);
    }
    const back = authorizeRequestPath(app, field("continue"));
    const again = (status: 401 | 403 | 429, message: string) =>
      page(c, status, signInForm(app, client.name, field("tx"), back, message, field("email")));
    let user: Awaited<ReturnType<typeof authenticateWithPassword>>;
    try {
      user = await authenticateWithPassword(ctx, app, {
        email: field("email").slice(0, 254),
        password: field("password").slice(0, 1024),
      });
      if (emailVerificationRefusal(app, user)) {
        return again(403, "Confirm your email first: follow the link in the mail we sent you.");
      }
      if (user.totp_enabled_at) {
        const factor = { otp: field("otp").replace(/\s/g, "") };
        if (!(await checkSecondFactor(ctx, app, user, factor, "oauth_authorize"))) {
          return again(401, "Enter the current code from your authenticator app.");
        }
      }
    } catch (error) {
      if (error instanceof ApiError && error.code === "rate_limited") {
        for (const [name, value] of Object.entries(error.options.headers ?? {})) {
          c.header(name, value);
        }
        return again(429, "Too many attempts. Wait a minute and try again.");
      }
      if (error instanceof ApiError && error.code === "invalid_grant") {
        return again(401, "The email or password is not right.");
      }
      throw error;
    }
    const signedIn: AuthorizationTransaction = {
      ...transaction,
      id: transactionId(),
      user_id: user.id,
      auth_time: Math.floor(ctx.clock.now().getTime() / 1000),
    };
    if (await alreadyGranted(ctx, user.id, signedIn)) {
      return c.redirect(await approve(ctx, app, signedIn, issuer), 302);
    }
    return page(c, 200, consentForm(app, client.name, signedIn.scopes, await seal(c, signedIn)));
  });
});

const userinfo = async (c: Context<AppEnv>) => {
  const subject = await authenticate(c);
  const { app } = await appAndIssuer(c);
  const scopes = "claims" in subject ? (subject.claims.scope ?? "").split(" ") : [];
  if (subject.kind !== "user" || subject.appId !== app.id || !scopes.includes("openid")) {
    throw new ApiError("forbidden", "An access token granted the openid scope is required", {
      headers: { "WWW-Authenticate": `Bearer realm="heimdall", error="insufficient_scope"` },
    });
  }
  const user = await findUser(c.var.services, app.id, subject.userId);
  c.header("Cache-Control", "no-store");
  return c.json({ sub: user.id, ...userClaims(user, scopes) }, 200);
};
authorizeRouter.get("/apps/:app_name/oauth/userinfo", userinfo);
authorizeRouter.post("/apps/:app_name/oauth/userinfo", userinfo);

const seal = (c: Context<AppEnv>, transaction: AuthorizationTransaction) =>
  sealTransaction(c.var.services, transaction);

/** Runs a page step: refusals the client must hear go to its redirect URI, others are shown. */
async function answer(c: Context<AppEnv>, step: () => Promise<Response>) {
  try {
    return await step();
  } catch (error) {
    if (error instanceof AuthorizationRedirect) return c.redirect(error.location, 302);
    if (error instanceof AuthorizationPageError) {
      return page(
        c,
        400,
        html`<h1>This sign-in cannot continue</h1>
        <p role="alert">${error.message}</p>`,
      );
    }
    throw error;
  }
}

function page(
  c: Context<AppEnv>,
  status: 200 | 400 | 401 | 403 | 429,
  body: HtmlEscapedString | Promise<HtmlEscapedString>,
) {
  return hostedPage(c, status, "Sign in", body);
}

/** The GET authorize URL (path and query) the form carries back, if it is one of this app's. */
function authorizeRequestPath(app: AppRecord, value: string) {
  const prefix = `/v1/apps/${encodeURIComponent(app.name)}/oauth/authorize?`;
  return value.startsWith(prefix) && value.length <= 4096 ? value : undefined;
}

/**
 * The account pages reached from the sign-in form return to `back`, the authorization request
 * (path and query, same origin), when the user is done.
 */
function accountLinks(app: AppRecord, back: string | undefined) {
  const link = (page: string) =>
    `/v1/apps/${encodeURIComponent(app.name)}/pages/${page}${back ? `?continue=${encodeURIComponent(back)}` : ""}`;
  return html`<nav aria-label="Account">
      <a href="${link("forgot-password")}">Forgot password?</a>
      ${settingsOf(app).signup === "closed" ? "" : html`<a href="${link("signup")}">Create account</a>`}
    </nav>`;
}

function signInForm(
  app: AppRecord,
  clientName: string,
  tx: string,
  back: string | undefined,
  error?: string,
  email = "",
) {
  return html`<h1>Sign in to ${app.display_name}</h1>
    <p>${clientName} asks to use your account.</p>
    ${error ? html`<p role="alert">${error}</p>` : ""}
    <form method="post">
      <input type="hidden" name="tx" value="${tx}" />
      ${back ? html`<input type="hidden" name="continue" value="${back}" />` : ""}
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required value="${email}" />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required />
      <label for="otp">Authenticator code (if you use two-factor authentication)</label>
      <input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]*" />
      <button type="submit">Sign in</button>
    </form>
    ${accountLinks(app, back)}`;
}

function consentForm(app: AppRecord, clientName: string, scopes: string[], tx: string) {
  return html`<h1>Allow ${clientName}?</h1>
    <p>${clientName} asks for access to your ${app.display_name} account:</p>
    <ul>
      ${scopes.map((scope) => html`<li>${describe(scope)}</li>`)}
    </ul>
    <form method="post">
      <input type="hidden" name="tx" value="${tx}" />
      <button type="submit" name="decision" value="allow">Allow</button>
      <button type="submit" name="decision" value="deny">Deny</button>
    </form>`;
}

function describe(scope: string) {
  switch (scope) {
    case "openid":
      return "Know who you are (your account id)";
    case "email":
      return "See your email address";
    case "profile":
      return "See your name";
    default:
      return `Permission ${scope}`;
  }
}
