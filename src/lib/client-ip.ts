import ipaddr from "ipaddr.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Address, number];

/** Which peers may tell Heimdall the client's address (`TRUST_PROXY`), parsed. */
export interface ProxyTrust {
  ranges: Range[];
  /** `cloudflare` was listed: `CF-Connecting-IP` from a trusted peer is the client. */
  cloudflare: boolean;
}

/**
 * Cloudflare's published edge ranges (https://www.cloudflare.com/ips/), trusted with
 * `TRUST_PROXY=cloudflare`.
 */
const CLOUDFLARE_RANGES = [
  "173.245.48.0/20",
  "103.21.244.0/22",
  "103.22.200.0/22",
  "103.31.4.0/22",
  "141.101.64.0/18",
  "108.162.192.0/18",
  "190.93.240.0/20",
  "188.114.96.0/20",
  "197.234.240.0/22",
  "198.41.128.0/17",
  "162.158.0.0/15",
  "104.16.0.0/13",
  "104.24.0.0/14",
  "172.64.0.0/13",
  "131.0.72.0/22",
  "2400:cb00::/32",
  "2606:4700::/32",
  "2803:f800::/32",
  "2405:b500::/32",
  "2405:8100::/32",
  "2a06:98c0::/29",
  "2c0f:f248::/32",
];

function parseRange(entry: string): Range {
  if (entry.includes("/")) return ipaddr.parseCIDR(entry);
  const address = ipaddr.process(entry);
  return [address, address.kind() === "ipv4" ? 32 : 128];
}

/**
 * `TRUST_PROXY`: a comma-separated list of proxy addresses or CIDR ranges, and/or `cloudflare`.
 * Throws on an entry that is neither.
 *
 * @example
 * parseProxyTrust("10.0.0.0/8, cloudflare")
 */
export function parseProxyTrust(value: string): ProxyTrust {
  const trust: ProxyTrust = { ranges: [], cloudflare: false };
  for (const entry of value.split(",").map((part) => part.trim())) {
    if (!entry) continue;
    if (entry.toLowerCase() === "cloudflare") {
      trust.cloudflare = true;
      trust.ranges.push(...CLOUDFLARE_RANGES.map(parseRange));
    } else {
      trust.ranges.push(parseRange(entry));
    }
  }
  return trust;
}

/** An address as one spelling (`::ffff:1.2.3.4` → `1.2.3.4`), or undefined if it is none. */
function addressOf(text: string | undefined): Address | undefined {
  if (!text) return undefined;
  try {
    return ipaddr.process(text.trim());
  } catch {
    return undefined;
  }
}

function isTrusted(address: Address, trust: ProxyTrust) {
  return trust.ranges.some(
    ([range, bits]) => range.kind() === address.kind() && address.match(range, bits),
  );
}

/**
 * The client's address on Node: the socket's peer, unless the peer is a trusted proxy. Then
 * `CF-Connecting-IP` (with `cloudflare` trusted), else `X-Forwarded-For` walked from the right,
 * skipping trusted proxies: the first address no trusted proxy wrote is the client. Headers from
 * an untrusted peer are ignored, so they cannot be spoofed.
 *
 * @example
 * clientIpOf("10.0.0.2", (name) => headers.get(name) ?? undefined, parseProxyTrust("10.0.0.0/8"))
 */
export function clientIpOf(
  peer: string | undefined,
  header: (name: string) => string | undefined,
  trust: ProxyTrust | undefined,
): string | undefined {
  const socket = addressOf(peer);
  if (!socket) return peer;
  if (!trust || !isTrusted(socket, trust)) return socket.toString();
  if (trust.cloudflare) {
    const connecting = addressOf(header("cf-connecting-ip"));
    if (connecting) return connecting.toString();
  }
  let client = socket;
  const hops = (header("x-forwarded-for") ?? "").split(",").reverse();
  for (const hop of hops) {
    if (!isTrusted(client, trust)) break;
    const address = addressOf(hop);
    // A hop that is no address was not written by a trusted proxy: the last trusted one answers.
    if (!address) break;
    client = address;
  }
  return client.toString();
}
