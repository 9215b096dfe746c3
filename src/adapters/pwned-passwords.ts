import type { BreachedPasswords, Logger } from "../ports";

/**
 * The Pwned Passwords range API (k-anonymity): only the first five hex digits of the password's
 * SHA-1 are sent; the answer lists the suffixes of every breached password with that prefix.
 * `Add-Padding` makes every answer about the same size. Any failure answers `undefined`.
 */
export function createPwnedPasswords(options: {
  baseUrl: string;
  logger: Logger;
  fetch?: typeof fetch;
  timeoutMs?: number;
}): BreachedPasswords {
  const send = options.fetch ?? fetch;
  const base = options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`;
  return {
    async isBreached(password) {
      const digest = new Uint8Array(
        await crypto.subtle.digest("SHA-1", new TextEncoder().encode(password)),
      );
      const hex = Array.from(digest, (byte) => byte.toString(16).padStart(2, "0"))
        .join("")
        .toUpperCase();
      const prefix = hex.slice(0, 5);
      const suffix = hex.slice(5);
      try {
        const res = await send(`${base}${prefix}`, {
          headers: { "Add-Padding": "true", "User-Agent": "heimdall" },
          signal: AbortSignal.timeout(options.timeoutMs ?? 3_000),
        });
        if (!res.ok) throw new Error(`range API answered ${res.status}`);
        const body = await res.text();
        return body.split("\n").some((line) => {
          const [candidate, count] = line.trim().split(":");
          return candidate === suffix && Number(count) > 0;
        });
      } catch (error) {
        options.logger.warn("breached-password check unavailable; password accepted", { error });
        return undefined;
      }
    },
  };
}
