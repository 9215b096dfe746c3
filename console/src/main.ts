import "./style.css";
import { ApiError, completeMfa, type Session, signIn } from "./api";
import { announce, field, h } from "./dom";
import { accountView } from "./views/account";
import { apiKeysView } from "./views/api-keys";
import { devicesView } from "./views/devices";
import { type MapSettings, mapView } from "./views/map";
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

/** Without the server's settings the map still draws, on a plain background. */
const noTiles: MapSettings = { map_tile_url: null, map_attribution: null };

async function start() {
  const settings = await fetch("/v1/console/config")
    .then(async (res) => (res.ok ? ((await res.json()).data as MapSettings) : noTiles))
    .catch(() => noTiles);
  showSignIn(settings);
}

/** Sign in to an app with a password, then the 2FA code when the account has it on. */
function showSignIn(settings: MapSettings, message = "") {
  const appName = h("input", { name: "app", required: true, autocomplete: "organization" });
  appName.value = new URLSearchParams(location.search).get("app") ?? "";
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
  app.replaceChildren(h("main", { id: "main", class: "centered" }, form));
  (appName.value ? email : appName).focus();

  async function onSubmit(event: Event) {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const result = await signIn(appName.value.trim(), email.value.trim(), password.value);
      password.value = "";
      if ("session" in result) return showConsole(result.session, settings);
      showMfaStep(appName.value.trim(), result.mfaToken, settings);
    } catch (e) {
      error.textContent =
        e instanceof ApiError && e.status < 500 ? e.message : "Heimdall could not be reached";
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
      signOut,
    ),
    main,
    h("p", { id: "status-bar", class: "status-bar" }),
  );

  let current: View | undefined;
  let opening = 0;
  async function route() {
    const page = pages.find((p) => p.hash === location.hash) ?? pages[0];
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
