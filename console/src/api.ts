/** Talks to Heimdall's REST API as one signed-in user. The tokens live in memory only. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly error: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  expires_in: number;
}

type Json = Record<string, unknown>;

async function call(method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed = text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : {};
  if (!res.ok) {
    const error = (parsed as { error?: Json }).error ?? {};
    throw new ApiError(
      res.status,
      String(error.code ?? "http_error"),
      String(error.message ?? `${res.status} ${res.statusText}`),
      error,
    );
  }
  return parsed;
}

const tokenPath = (app: string, action = "") =>
  `/v1/apps/${encodeURIComponent(app)}/tokens${action}`;

/** A password sign-in's answer: a session, or the second step 2FA asks for. */
export type SignInResult = { session: Session } | { mfaToken: string };

/** A grant at the token endpoint; with 2FA on, the answer is the second step it asks for. */
async function grant(app: string, body: Json): Promise<SignInResult> {
  try {
    const tokens = await call("POST", tokenPath(app), body);
    return { session: new Session(app, tokens as TokenResponse) };
  } catch (error) {
    if (error instanceof ApiError && error.code === "mfa_required") {
      return { mfaToken: String(error.error.mfa_token) };
    }
    throw error;
  }
}

export const signIn = (app: string, email: string, password: string) =>
  grant(app, { grant_type: "password", email, password });

/** The code of a sign-in email, or the `otl_…` token of its link. */
export const signInWithEmail = (
  app: string,
  proof: { email: string; code: string } | { email_token: string },
) => grant(app, { grant_type: "email_otp", ...proof });

const appPath = (app: string, path: string) => `/v1/apps/${encodeURIComponent(app)}${path}`;

/** Sends a sign-in code (and link) to the address, if it has an account. */
export async function startEmailSignIn(app: string, email: string) {
  await call("POST", appPath(app, "/otp/start"), { email, channel: "code" });
}

/** Sign-up: signed in at once (201), or a verification mail to follow first (202). */
export async function signUp(
  app: string,
  input: { email: string; password: string; display_name?: string },
): Promise<{ session: Session } | { verificationSent: true }> {
  const answer = (await call("POST", appPath(app, "/signup"), input)) as Json;
  if (typeof answer.access_token === "string") {
    return { session: new Session(app, answer as unknown as TokenResponse) };
  }
  return { verificationSent: true };
}

export async function forgotPassword(app: string, email: string) {
  await call("POST", appPath(app, "/password/forgot"), { email });
}

/** A message of the development mailbox (`DEV_MAILBOX=true`). */
export interface MailboxMessage {
  id: string;
  app: string | null;
  kind: string;
  to: string;
  subject: string;
  text: string | null;
  status: string;
  created_at: string;
}

export async function mailbox(app: string) {
  const query = app ? `?${new URLSearchParams({ app })}` : "";
  const { data } = (await call("GET", `/v1/dev/mailbox${query}`)) as { data: MailboxMessage[] };
  return data;
}

export async function completeMfa(app: string, mfaToken: string, code: string) {
  const recovery = code.length > 8;
  const tokens = await call("POST", tokenPath(app), {
    grant_type: "mfa_otp",
    mfa_token: mfaToken,
    ...(recovery ? { recovery_code: code } : { otp: code }),
  });
  return new Session(app, tokens as TokenResponse);
}

/** Reads the claims of our own access token, to shape the UI; the server decides access. */
function claimsOf(token: string): { sub?: string; permissions?: string[] } {
  const payload = token.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0))));
}

export class Session {
  #access: string;
  #refresh: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #refreshing: Promise<void> | undefined;
  readonly permissions: string[];
  onEnded: () => void = () => {};

  constructor(
    readonly app: string,
    tokens: TokenResponse,
  ) {
    this.#access = tokens.access_token;
    this.#refresh = tokens.refresh_token;
    this.permissions = claimsOf(tokens.access_token).permissions ?? [];
    this.#schedule(tokens.expires_in);
  }

  /** `resource:action`, with `*` wildcards as the server matches them. */
  can(permission: string) {
    const [resource, action] = permission.split(":");
    return this.permissions.some((held) => {
      const [r, a] = held.split(":");
      return (r === "*" || r === resource) && (a === "*" || a === action);
    });
  }

  get accessToken() {
    return this.#access;
  }

  /** A request with the access token; a 401 refreshes once (rotation) and retries. */
  async request<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return (await call(method, path, body, this.#access)) as T;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401 || !this.#refresh) throw error;
      await this.refresh();
      return (await call(method, path, body, this.#access)) as T;
    }
  }

  /** Rotates the refresh token; concurrent callers share one rotation. */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const tokens = (await call("POST", tokenPath(this.app, "/refresh"), {
          refresh_token: this.#refresh,
        })) as TokenResponse;
        this.#access = tokens.access_token;
        this.#refresh = tokens.refresh_token ?? this.#refresh;
        this.#schedule(tokens.expires_in);
      } catch (error) {
        this.#end();
        throw error;
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** Revokes the refresh token, which ends the server-side session and its access tokens. */
  async signOut() {
    const token = this.#refresh ?? this.#access;
    this.#end();
    await call("POST", tokenPath(this.app, "/revoke"), { token }).catch(() => {});
  }

  #schedule(expiresIn: number) {
    clearTimeout(this.#timer);
    if (!this.#refresh) return;
    // A minute early (or at 80 % of short lives), so requests rarely meet an expired token.
    const lead = Math.min(60, expiresIn * 0.2);
    this.#timer = setTimeout(() => void this.refresh().catch(() => {}), (expiresIn - lead) * 1000);
  }

  #end() {
    clearTimeout(this.#timer);
    this.#refresh = undefined;
    this.#access = "";
    this.onEnded();
  }
}

export interface Page<T> {
  data: T[];
  pagination?: { total: number; has_more: boolean };
}

export interface Device {
  id: string;
  name: string;
  status: "online" | "offline" | "unknown";
  last_seen_at: string | null;
  secret_prefix: string;
  expected_interval_seconds: number;
}

export interface Position {
  id: string;
  device_id: string;
  latitude: number;
  longitude: number;
  timestamp: string;
  speed?: number | null;
  battery?: number | null;
}
