import ipaddr from "ipaddr.js";
import { ApiError, type ErrorDetail } from "../lib/errors";
import { type Address, type AllowEntry, parseAllowlistEntry } from "../lib/host-allowlist";
import type { Clock, OutboundNetwork } from "../ports";

/**
 * The one policy for every request Heimdall makes to a URL a tenant chose (a platform's
 * discovery document, JWKS, token and userinfo endpoints; webhooks when they come): https only,
 * never to a loopback, private, link-local, CGNAT, unique-local, metadata or otherwise reserved
 * address, unless `OUTBOUND_ALLOWLIST` names the host or its address. Checked when the URL is
 * saved and again at every fetch and redirect hop.
 */
export interface OutboundPolicy {
  /**
   * Refuses (400 `validation_error`, one detail per field) the URLs Heimdall would not fetch. A
   * name that does not resolve now is taken: it reaches nothing, and every fetch checks again.
   */
  assertAllowed(fields: Record<string, string | null | undefined>): Promise<void>;
  /**
   * `fetch` for tenant-chosen URLs (openid-client's `customFetch`). Every failure, refusal,
   * unreachable host or timeout alike, is the same `OutboundError`, and is remembered for a while
   * so the same URL fails at once without another attempt.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
}

/** The one answer of a failed outbound fetch, whatever the cause (kept in `cause`, for the log). */
export class OutboundError extends TypeError {
  override readonly name = "OutboundError";
  constructor(cause?: unknown) {
    super("The URL could not be fetched", { cause });
  }
}

const TIMEOUT_MS = 5_000;
const FAILURE_TTL_MS = 30_000;
const MAX_REMEMBERED_FAILURES = 1_000;
const MAX_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Only public unicast addresses are reachable without the allowlist. */
function isPublic(address: Address) {
  return address.range() === "unicast";
}

function parseAddress(address: string): Address | undefined {
  return ipaddr.isValid(address) ? ipaddr.process(address) : undefined;
}

const portOf = (url: URL) => url.port || (url.protocol === "http:" ? "80" : "443");

/** The URL's host when it is an IP literal (the WHATWG parser has normalized it already). */
function literalAddress(url: URL) {
  if (url.hostname.startsWith("[")) return url.hostname.slice(1, -1);
  return ipaddr.IPv4.isValidFourPartDecimal(url.hostname) ? url.hostname : undefined;
}

type Verdict =
  | { refused: string }
  | { admit: (address: string) => boolean; addresses: string[] | undefined };

export function createOutboundPolicy(options: {
  /** `OUTBOUND_ALLOWLIST`, parsed by the config. */
  allowlist: readonly string[];
  network: OutboundNetwork;
  clock: Clock;
}): OutboundPolicy {
  const entries = options.allowlist.flatMap((entry) => parseAllowlistEntry(entry) ?? []);
  const portMatches = (entry: AllowEntry, url: URL) =>
    entry.port === undefined || entry.port === portOf(url);
  const nameAllowed = (url: URL) =>
    entries.some(
      (entry) => "host" in entry && entry.host === url.hostname && portMatches(entry, url),
    );
  const addressAllowed = (url: URL, address: Address) =>
    entries.some(
      (entry) =>
        "range" in entry &&
        entry.range[0].kind() === address.kind() &&
        address.match(entry.range) &&
        portMatches(entry, url),
    );

  async function resolve(url: URL): Promise<string[] | undefined> {
    const literal = literalAddress(url);
    if (literal) return [literal];
    try {
      return await options.network.resolveHost(url.hostname);
    } catch {
      return [];
    }
  }

  async function check(url: URL): Promise<Verdict> {
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return { refused: "must be an https URL" };
    }
    if (url.username || url.password) return { refused: "must not carry credentials" };
    const byName = nameAllowed(url);
    const addresses = byName ? undefined : await resolve(url);
    const parsed = addresses?.map(parseAddress);
    const listed =
      byName ||
      (parsed !== undefined &&
        parsed.length > 0 &&
        parsed.every((address) => address && addressAllowed(url, address)));
    if (url.protocol === "http:" && !listed) return { refused: "must be https" };
    const admit = (address: string) => {
      if (byName) return true;
      const ip = parseAddress(address);
      return ip !== undefined && (isPublic(ip) || addressAllowed(url, ip));
    };
    if (addresses && !addresses.every(admit)) {
      return { refused: "must not point at a loopback, private, link-local or reserved address" };
    }
    return { admit, addresses };
  }

  const failures = new Map<string, number>();
  const now = () => options.clock.now().getTime();

  async function send(first: Request): Promise<Response> {
    let request = first;
    for (let hop = 0; ; hop++) {
      const url = new URL(request.url);
      const verdict = await check(url);
      if ("refused" in verdict) throw new Error(`refused: ${verdict.refused}`);
      if (verdict.addresses?.length === 0) throw new Error("the host does not resolve");
      const response = await options.network.send(request, verdict.admit);
      const location = response.headers.get("location");
      const follow =
        REDIRECT_STATUSES.has(response.status) &&
        location !== null &&
        hop < MAX_REDIRECTS &&
        (request.method === "GET" || request.method === "HEAD");
      if (!follow) return response;
      await response.body?.cancel();
      const next = new URL(location, url);
      const headers = new Headers(request.headers);
      if (next.origin !== url.origin) {
        headers.delete("authorization");
        headers.delete("cookie");
      }
      request = new Request(next, {
        method: request.method,
        headers,
        signal: request.signal,
        redirect: "manual",
      });
    }
  }

  return {
    async assertAllowed(fields) {
      const details: ErrorDetail[] = [];
      for (const [field, value] of Object.entries(fields)) {
        if (!value) continue;
        let url: URL;
        try {
          url = new URL(value);
        } catch {
          details.push({ field: `json.${field}`, reason: "must be an https URL" });
          continue;
        }
        const verdict = await check(url);
        if ("refused" in verdict) details.push({ field: `json.${field}`, reason: verdict.refused });
      }
      if (details.length > 0) {
        throw new ApiError("validation_error", "Heimdall does not fetch these URLs", { details });
      }
    },

    async fetch(input, init) {
      const key = `${init?.method ?? (input instanceof Request ? input.method : "GET")} ${
        input instanceof Request ? input.url : String(input)
      }`;
      const failedAt = failures.get(key);
      if (failedAt !== undefined && now() - failedAt < FAILURE_TTL_MS) throw new OutboundError();
      const timeout = AbortSignal.timeout(TIMEOUT_MS);
      const signal = init?.signal ? AbortSignal.any([timeout, init.signal]) : timeout;
      try {
        // Inside: a URL the Fetch API itself refuses (credentials in it) fails the same way.
        return await send(new Request(input, { ...init, signal, redirect: "manual" }));
      } catch (error) {
        if (failures.size >= MAX_REMEMBERED_FAILURES) failures.clear();
        failures.set(key, now());
        throw new OutboundError(error);
      }
    },
  };
}
