import { SECRET_PREFIXES } from "./crypto";

export const FILTERED = "[Filtered]";

/** A query parameter whose name contains one of these has its value replaced. */
export const SECRET_QUERY_WORDS = [
  "key",
  "token",
  "ticket",
  "password",
  "secret",
  "code",
  "otp",
  "state",
] as const;

/**
 * Secrets by their form: a value with one of Heimdall's secret prefixes (`dk_…`, `inv_tok_…`),
 * or a JWT (access, refresh-less ID, MFA and socket-ticket tokens are all JWTs).
 */
const SECRET_VALUE = new RegExp(
  `(?<![A-Za-z0-9_])(?:${SECRET_PREFIXES.join("|")})[A-Za-z0-9_-]{16,}|eyJ[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]{4,}\\.[A-Za-z0-9_-]*`,
  "g",
);

/** `name=value` pairs of a URL, a query string or a log line (`?`, `&` or `;` before them). */
const QUERY_PAIR = /(^|[?&;])([^=&#?;\s"']+)=([^&#;\s"']*)/g;

export const isSecretQueryName = (name: string) => {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name.replace(/\+/g, " "));
  } catch {}
  const lower = decoded.toLowerCase();
  return SECRET_QUERY_WORDS.some((word) => lower.includes(word));
};

/**
 * Text as it may be logged or reported: the values of secret query parameters and every
 * secret Heimdall issues (in a path segment like `/v1/invites/inv_tok_…/accept`, a message, a
 * log line) replaced with `[Filtered]`.
 *
 * @example
 * redactSecrets("/v1/invites/inv_tok_abc…/accept?ticket=x") // "/v1/invites/[Filtered]/accept?ticket=[Filtered]"
 */
export function redactSecrets(text: string): string {
  return text
    .replace(QUERY_PAIR, (pair, before: string, name: string) =>
      isSecretQueryName(name) ? `${before}${name}=${FILTERED}` : pair,
    )
    .replace(SECRET_VALUE, FILTERED);
}
