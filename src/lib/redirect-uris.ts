/** The loopback hosts a native app may listen on over plain http (RFC 8252 §7.3). */
const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);
/** A private-use scheme is reverse-DNS (RFC 8252 §7.1), `com.example.app`: at least one dot. */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+:$/;

/**
 * Why a URI cannot be an OAuth redirect URI, or undefined when it can: https; http to a loopback
 * host only; or a native app's private-use scheme. Never `javascript:`, `data:`, `file:` or any
 * other scheme a browser would run or open locally, and never with a fragment.
 */
export function redirectUriProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return "must be an absolute URI";
  }
  if (uri.includes("#")) return "a redirect URI has no fragment";
  if (url.protocol === "https:") return url.hostname ? undefined : "must name a host";
  if (url.protocol === "http:") {
    return LOOPBACK_HOSTS.has(url.hostname)
      ? undefined
      : "http is for loopback only (127.0.0.1, [::1], localhost); use https";
  }
  return PRIVATE_USE_SCHEME.test(url.protocol)
    ? undefined
    : "must be https, loopback http, or a reverse-DNS private-use scheme (com.example.app:/cb)";
}

export const isSafeRedirectUri = (uri: string) => redirectUriProblem(uri) === undefined;
