import type { Session } from "../api";
import { announce, field, formatTime, h, submitted } from "../dom";
import { action, row, secretBox, table } from "./table";

interface SessionRow {
  id: string;
  user_agent: string | null;
  ip_address: string | null;
  created_at: string;
  last_used_at: string;
  current: boolean;
}

interface MfaStatus {
  enabled: boolean;
  pending: boolean;
  recovery_codes_left: number;
}

const codeInput = () =>
  h("input", {
    name: "code",
    inputMode: "numeric",
    autocomplete: "one-time-code",
    required: true,
    maxLength: 32,
  });

/** Changes the password; the server ends every other session of the user. */
function passwordForm(session: Session, changed: () => Promise<void>) {
  const current = h("input", {
    name: "current_password",
    type: "password",
    required: true,
    autocomplete: "current-password",
  });
  const next = h("input", {
    name: "new_password",
    type: "password",
    required: true,
    autocomplete: "new-password",
  });
  const error = h("p", { class: "error", role: "alert" });
  const done = h("p", { class: "done" });
  return h(
    "form",
    {
      class: "inline-form password-form",
      "aria-label": "Change password",
      onsubmit: submitted(async () => {
        error.textContent = "";
        done.textContent = "";
        try {
          await session.request("POST", "/v1/users/me/password", {
            current_password: current.value,
            new_password: next.value,
          });
          current.value = "";
          next.value = "";
          done.textContent = "Password changed. Your other sessions were ended.";
          announce("Password changed");
          await changed();
        } catch (e) {
          error.textContent = (e as Error).message;
        }
      }),
    },
    field("Current password", current),
    field("New password", next),
    h("button", { type: "submit" }, "Change password"),
    error,
    done,
  );
}

/** The signed-in user's own sessions, password and two-factor authentication. */
export async function accountView(session: Session) {
  const root = h("section", { "aria-labelledby": "account-title" });
  const sessions = h("div");
  const mfa = h("div", { class: "mfa" });
  root.append(
    h("h2", { id: "account-title" }, "Account"),
    sessions,
    h("h3", {}, "Password"),
    passwordForm(session, () => loadSessions()),
    h("h3", {}, "Two-factor authentication"),
    mfa,
  );

  async function loadSessions() {
    const { data } = await session.request<{ data: SessionRow[] }>("GET", "/v1/users/me/sessions");
    sessions.replaceChildren(
      table(
        "Your sessions",
        ["Started", "Last used", "Device", "Actions"],
        data.map((s) =>
          row(
            formatTime(s.created_at),
            formatTime(s.last_used_at),
            [s.user_agent, s.ip_address].filter(Boolean).join(" · ") || "—",
            s.current
              ? "this session"
              : action("End", `End the session started ${formatTime(s.created_at)}`, async () => {
                  await session.request("DELETE", `/v1/users/me/sessions/${s.id}`);
                  await loadSessions();
                }),
          ),
        ),
      ),
      action("End all other sessions", "End all other sessions", async () => {
        await session.request("DELETE", "/v1/users/me/sessions");
        announce("Every other session ended");
        await loadSessions();
      }),
    );
  }

  async function loadMfa() {
    const { data } = await session.request<{ data: MfaStatus }>("GET", "/v1/users/me/2fa");
    if (data.enabled) {
      const code = codeInput();
      mfa.replaceChildren(
        h("p", {}, `On · ${data.recovery_codes_left} recovery codes left`),
        h(
          "form",
          { class: "inline-form", onsubmit: submitted(() => off(code)) },
          field("Code or recovery code", code),
          h("button", { type: "submit" }, "Turn 2FA off"),
        ),
      );
    } else {
      mfa.replaceChildren(
        h("p", {}, "Off"),
        action("Set up 2FA", "Set up two-factor authentication", enroll),
      );
    }
  }

  async function enroll() {
    const { data } = await session.request<{
      data: { secret: string; otpauth_url: string; qr_code_svg: string };
    }>("POST", "/v1/users/me/2fa");
    // As an image, the SVG cannot run scripts or reach the page.
    const qr = h(
      "div",
      { class: "qr" },
      h("img", {
        src: `data:image/svg+xml,${encodeURIComponent(data.qr_code_svg)}`,
        alt: "QR code of the 2FA secret",
      }),
    );
    const code = codeInput();
    mfa.replaceChildren(
      h("p", {}, "Scan with an authenticator app, or enter the secret, then confirm a code."),
      qr,
      secretBox("Secret", data.secret),
      h(
        "form",
        { class: "inline-form", onsubmit: submitted(() => verify(code)) },
        field("Code from the app", code),
        h("button", { type: "submit" }, "Confirm"),
      ),
    );
    code.focus();
  }

  async function verify(code: HTMLInputElement) {
    try {
      const { data } = await session.request<{ data: { recovery_codes: string[] } }>(
        "POST",
        "/v1/users/me/2fa/verify",
        { code: code.value },
      );
      await loadMfa();
      mfa.append(
        h("p", {}, "2FA is on. These recovery codes are shown once; each works once:"),
        h(
          "ul",
          { class: "codes" },
          ...data.recovery_codes.map((c) => h("li", {}, h("code", {}, c))),
        ),
      );
      announce("Two-factor authentication is on");
    } catch (error) {
      announce(`2FA: ${(error as Error).message}`, "error");
    }
  }

  async function off(code: HTMLInputElement) {
    const value = code.value.trim();
    try {
      await session.request("DELETE", "/v1/users/me/2fa", {
        ...(value.length > 8 ? { recovery_code: value } : { code: value }),
      });
      announce("Two-factor authentication is off");
      await loadMfa();
    } catch (error) {
      announce(`2FA: ${(error as Error).message}`, "error");
    }
  }

  await Promise.all([loadSessions(), loadMfa()]);
  return { element: root };
}
