import {
  ApiError,
  forgotPassword,
  type SignInResult,
  signInWithEmail,
  signUp,
  startEmailSignIn,
} from "../api";
import { announce, field, h } from "../dom";

/** What the forms before sign-in hand back to the console. */
export interface SignedOutHooks {
  /** The app name typed last, kept from one form to the next. */
  app: string;
  setApp(name: string): void;
  signedIn(result: SignInResult, app: string): void;
}

/** The way back to the sign-in form from each of these forms. */
export const backToSignIn = () => h("p", {}, h("a", { href: "#/sign-in" }, "Back to sign in"));

const reachable = (e: unknown) =>
  e instanceof ApiError && e.status < 500 ? e.message : "Heimdall could not be reached";

function appInput(hooks: SignedOutHooks) {
  const input = h("input", {
    name: "app",
    required: true,
    autocomplete: "organization",
    oninput: () => hooks.setApp(input.value.trim()),
  });
  input.value = hooks.app;
  return input;
}

const emailInput = () =>
  h("input", { name: "email", type: "email", required: true, autocomplete: "username" });

/** A form of this screen: its heading, fields, the error and result lines, the submit button. */
function screen(
  id: string,
  title: string,
  fields: HTMLElement[],
  submitLabel: string,
  run: (show: { error(text: string): void; done(text: string): void }) => Promise<void>,
) {
  const error = h("p", { class: "error", role: "alert" });
  const done = h("p", { class: "done" });
  const submit = h("button", { type: "submit" }, submitLabel);
  const form = h(
    "form",
    {
      class: "sign-in",
      "aria-labelledby": id,
      onsubmit: async (event: Event) => {
        event.preventDefault();
        submit.disabled = true;
        error.textContent = "";
        done.textContent = "";
        try {
          await run({
            error: (text) => {
              error.textContent = text;
            },
            done: (text) => {
              done.textContent = text;
              announce(text);
            },
          });
        } catch (e) {
          error.textContent = reachable(e);
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", { id }, title),
    ...fields,
    error,
    done,
    submit,
    backToSignIn(),
  );
  return form;
}

/** Sign-up: signed in at once, or asked to confirm the address first, as the app decides. */
export function signUpForm(hooks: SignedOutHooks) {
  const app = appInput(hooks);
  const email = emailInput();
  const password = h("input", {
    name: "password",
    type: "password",
    required: true,
    autocomplete: "new-password",
  });
  const displayName = h("input", { name: "display_name", autocomplete: "name", maxLength: 200 });
  const form = screen(
    "sign-up-title",
    "Create an account",
    [
      field("App", app),
      field("Email", email),
      field("Password", password),
      field("Display name (optional)", displayName),
    ],
    "Create account",
    async (show) => {
      const name = app.value.trim();
      try {
        const result = await signUp(name, {
          email: email.value.trim(),
          password: password.value,
          ...(displayName.value.trim() ? { display_name: displayName.value.trim() } : {}),
        });
        password.value = "";
        if ("session" in result) return hooks.signedIn(result, name);
        show.done("Check your inbox: we sent a link to confirm your email address.");
      } catch (e) {
        if (e instanceof ApiError && e.status === 403) {
          return show.error("Sign-up is closed for this app");
        }
        throw e;
      }
    },
  );
  return { form, focus: app.value ? email : app };
}

/** Asks for a reset link; the answer is the same whether or not the address has an account. */
export function forgotPasswordForm(hooks: SignedOutHooks) {
  const app = appInput(hooks);
  const email = emailInput();
  const form = screen(
    "forgot-title",
    "Forgot your password?",
    [field("App", app), field("Email", email)],
    "Send reset link",
    async (show) => {
      await forgotPassword(app.value.trim(), email.value.trim());
      show.done("If an account exists, we sent a link to reset the password.");
    },
  );
  return { form, focus: app.value ? email : app };
}

/** Sign-in with a code mailed to the address: first the address, then the code. */
export function emailCodeForm(hooks: SignedOutHooks) {
  const app = appInput(hooks);
  const email = emailInput();
  const code = h("input", {
    name: "code",
    inputMode: "numeric",
    autocomplete: "one-time-code",
    maxLength: 6,
    pattern: "[0-9]{6}",
  });
  const codeField = field("Code from the email", code);
  codeField.hidden = true;
  const form = screen(
    "email-code-title",
    "Sign in with an email code",
    [field("App", app), field("Email", email), codeField],
    "Email me a code",
    async (show) => {
      const name = app.value.trim();
      if (codeField.hidden) {
        await startEmailSignIn(name, email.value.trim());
        codeField.hidden = false;
        code.required = true;
        submitButton().textContent = "Sign in with the code";
        show.done(`If ${email.value.trim()} has an account, we sent it a code. It works once.`);
        code.focus();
        return;
      }
      const result = await signInWithEmail(name, {
        email: email.value.trim(),
        code: code.value.trim(),
      });
      hooks.signedIn(result, name);
    },
  );
  const submitButton = () => form.querySelector("button[type=submit]") as HTMLButtonElement;
  return { form, focus: app.value ? email : app };
}
