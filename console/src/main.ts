import "./style.css";
import {
  ApiError,
  completeMfa,
  type Session,
  type SignInResult,
  signIn,
  signInWithEmail,
} from "./api";
import { announce, field, h } from "./dom";
import { accountView } from "./views/account";
import { apiKeysView } from "./views/api-keys";
import { devicesView } from "./views/devices";
import { mailboxHash, mailboxView } from "./views/mailbox";
import { type MapSettings, mapView } from "./views/map";
import {
  backToSignIn,
  emailCodeForm,
  forgotPasswordForm,
  type SignedOutHooks,
  signUpForm,
} from "./views/signed-out";
import { usersView } from "./views/users";

interface View {
  element: HTMLElement;
  dispose?(): void;
}

interface Page {
  hash: string;
  title: string;
  permission?: string;
  open(session: Session): Promise<View>;
}

const app = document.getElementById("app")!;

/** `GET /v1/console/config`: the map's tiles, and whether `/v1/dev/mailbox` is there. */
type ConsoleSettings = MapSettings & { dev_mailbox?: boolean };

/** Without the server's settings the map still draws, on a plain background. */
const noTiles: ConsoleSettings = { map_tile_url: null, map_attribution: null };

/** The app name last typed (or given as `?app=`), kept from one form to the next. */
let lastApp = new URLSearchParams(location.search).get("app") ?? "";
/** Whether the server keeps a development mailbox (`GET /v1/dev/mailbox`). */
let mailboxOn = false;
let signedIn = false;

async function start() {
  const settings = await fetch("/v1/console/config")
    .then(async (res) => (res.ok ? ((await res.json()).data as ConsoleSettings) : noTiles))
    .catch(() => noTiles);
  mailboxOn = settings.dev_mailbox === true;
  window.addEventListener("hashchange", () => {
    if (!signedIn) showSignedOut(settings);
  });
  const link = takeFragment();
  if (link?.app) lastApp = link.app;
  if (link?.emailToken && lastApp) {
    const appName = lastApp;
    app.replaceChildren(h("main", { id: "main", class: "centered" }, h("p", {}, "Signing in…")));
    try {
      return enter(
        await signInWithEmail(appName, { email_token: link.emailToken }),
        appName,
        settings,
      );
    } catch (e) {
      return showSignIn(settings, failure(e));
    }
  }
  showSignedOut(settings);
}

/**
 * `#app=…`, where the account pages send a user back, and `&email_token=…`, a sign-in email's
 * link. Read once and removed: the token works once and must not stay in the history.
 */
function takeFragment() {
  if (!/^#(app|email_token)=/.test(location.hash)) return undefined;
  const params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  return { app: params.get("app"), emailToken: params.get("email_token") };
}

const failure = (e: unknown) =>
  e instanceof ApiError && e.status < 500 ? e.message : "Heimdall could not be reached";

/** A grant's answer: the console, or the 2FA step when the account has it on. */
function enter(result: SignInResult, appName: string, settings: MapSettings) {
  if ("session" in result) return showConsole(result.session, settings);
  showMfaStep(appName, result.mfaToken, settings);
}

/** The forms before sign-in besides the password form, each at its own `#/…`. */
const signedOutForms = new Map([
  ["#/signup", signUpForm],
  ["#/forgot-password", forgotPasswordForm],
  ["#/email-code", emailCodeForm],
]);

function showSignedOut(settings: MapSettings) {
  if (location.hash === mailboxHash && mailboxOn) return void showMailbox();
  const form = signedOutForms.get(location.hash);
  if (!form) return showSignIn(settings);
  const hooks: SignedOutHooks = {
    app: lastApp,
    setApp: (name) => {
      lastApp = name;
    },
    signedIn: (result, appName) => enter(result, appName, settings),
  };
  const view = form(hooks);
  app.replaceChildren(h("main", { id: "main", class: "centered" }, view.form));
  view.focus.focus();
}

async function showMailbox() {
  const main = h("main", { id: "main" }, h("p", {}, "Loading…"));
  app.replaceChildren(main);
  const view = await mailboxView(lastApp);
  if (signedIn || location.hash !== mailboxHash) return;
  main.replaceChildren(backToSignIn(), view.element);
}

/** Sign in to an app with a password, then the 2FA code when the account has it on. */
function showSignIn(settings: MapSettings, message = "") {
  const appName = h("input", {
    name: "app",
    required: true,
    autocomplete: "organization",
    oninput: () => {
      lastApp = appName.value.trim();
    },
  });
  appName.value = lastApp;
  // Off a form's own hash: its link below would otherwise change nothing, and open nothing.
  if (signedOutForms.has(location.hash) || location.hash === mailboxHash) {
    history.replaceState(null, "", "#/sign-in");
  }
  const email = h("input", {
    name: "email",
    type: "email",
    required: true,
    autocomplete: "username",
  });
  const password = h("input", {
    name: "password",
    type: "password",
    required: true,
    autocomplete: "current-password",
  });
  const error = h("p", { class: "error", role: "alert" }, message);
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", "aria-labelledby": "sign-in-title", onsubmit: onSubmit },
    h("h1", { id: "sign-in-title" }, "Heimdall console"),
    field("App", appName),
    field("Email", email),
    field("Password", password),
    error,
    submit,
  );
  // Not a <nav>: "the navigation" is the console's own, there once signed in.
  const otherWays = h(
    "div",
    { class: "account-links" },
    h("a", { href: "#/signup" }, "Create account"),
    h("a", { href: "#/forgot-password" }, "Forgot password?"),
    h("a", { href: "#/email-code" }, "Sign in with an email code"),
    mailboxOn && h("a", { href: mailboxHash }, "Mailbox"),
  );
  app.replaceChildren(h("main", { id: "main", class: "centered" }, form, otherWays));
  (appName.value ? email : appName).focus();

  async function onSubmit(event: Event) {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const result = await signIn(appName.value.trim(), email.value.trim(), password.value);
      password.value = "";
      enter(result, appName.value.trim(), settings);
    } catch (e) {
      error.textContent = failure(e);
    } finally {
      submit.disabled = false;
    }
  }
}

function showMfaStep(appName: string, mfaToken: string, settings: MapSettings) {
  const code = h("input", {
    name: "otp",
    inputMode: "numeric",
    autocomplete: "one-time-code",
    required: true,
    maxLength: 32,
  });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {
      class: "sign-in",
      "aria-labelledby": "mfa-title",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        try {
          showConsole(await completeMfa(appName, mfaToken, code.value.trim()), settings);
        } catch (e) {
          if (
            e instanceof ApiError &&
            e.code === "invalid_grant" &&
            e.message.includes("mfa_token")
          )
            return showSignIn(settings, "The sign-in took too long; start again");
          error.textContent = e instanceof ApiError ? e.message : "Heimdall could not be reached";
        }
      },
    },
    h("h1", { id: "mfa-title" }, "Two-factor authentication"),
    field("Code from your authenticator app (or a recovery code)", code),
    error,
    h("button", { type: "submit" }, "Verify"),
  );
  app.replaceChildren(h("main", { id: "main", class: "centered" }, form));
  code.focus();
}

function showConsole(session: Session, settings: MapSettings) {
  const all: Page[] = [
    { hash: "#/map", title: "Map", permission: "gps:read", open: (s) => mapView(s, settings) },
    { hash: "#/devices", title: "Devices", permission: "devices:read", open: devicesView },
    { hash: "#/keys", title: "API keys", permission: "api-keys:read", open: apiKeysView },
    { hash: "#/users", title: "Users & roles", permission: "users:read", open: usersView },
    { hash: "#/account", title: "Account", open: accountView },
  ];
  const pages = all.filter((page) => !page.permission || session.can(page.permission));
  const tools: Page[] = mailboxOn
    ? [{ hash: mailboxHash, title: "Mailbox", open: (s) => mailboxView(s.app) }]
    : [];
  signedIn = true;

  const main = h("main", { id: "main", tabIndex: -1 });
  const nav = h("nav", { "aria-label": "Console" });
  const signOut = h("button", { type: "button", class: "sign-out" }, "Sign out");
  app.replaceChildren(
    h(
      "header",
      {},
      h("strong", {}, "Heimdall"),
      h("span", { class: "app-name" }, session.app),
      nav,
      ...tools.map((tool) => h("a", { href: tool.hash, class: "tool-link" }, tool.title)),
      signOut,
    ),
    main,
    h("p", { id: "status-bar", class: "status-bar" }),
  );

  let current: View | undefined;
  let opening = 0;
  async function route() {
    const page = [...pages, ...tools].find((p) => p.hash === location.hash) ?? pages[0];
    if (!page) return;
    nav.replaceChildren(
      ...pages.map((p) =>
        h("a", { href: p.hash, "aria-current": p === page ? "page" : undefined }, p.title),
      ),
    );
    current?.dispose?.();
    current = undefined;
    const mine = ++opening;
    main.replaceChildren(h("p", {}, "Loading…"));
    document.title = `${page.title} · Heimdall`;
    try {
      const view = await page.open(session);
      if (mine !== opening) return view.dispose?.();
      current = view;
      main.replaceChildren(view.element);
    } catch (error) {
      if (mine === opening)
        main.replaceChildren(h("p", { role: "alert" }, (error as Error).message));
    }
  }

  const end = (message: string) => {
    signedIn = false;
    window.removeEventListener("hashchange", route);
    current?.dispose?.();
    showSignIn(settings, message);
  };
  session.onEnded = () => end("Your session ended; sign in again");
  signOut.addEventListener("click", async () => {
    session.onEnded = () => {};
    await session.signOut();
    end("");
    announce("Signed out");
  });
  window.addEventListener("hashchange", route);
  void route();
}

void start();
