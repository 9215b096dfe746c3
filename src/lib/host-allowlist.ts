import ipaddr from "ipaddr.js";

export type Address = ipaddr.IPv4 | ipaddr.IPv6;
export type AllowEntry = { port?: string | undefined } & (
  | { host: string }
  | { range: [Address, number] }
);

const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const PORT = /^([1-9]\d{0,4})$/;

/** One `OUTBOUND_ALLOWLIST` entry: `host`, `host:port`, an IP, `ip:port`, `[ipv6]:port` or a CIDR. */
export function parseAllowlistEntry(entry: string): AllowEntry | undefined {
  const value = entry.trim().toLowerCase();
  try {
    if (value.includes("/")) return { range: ipaddr.parseCIDR(value) };
    if (ipaddr.IPv6.isValid(value)) return { range: [ipaddr.parse(value), 128] };
    const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(value);
    const parts = value.split(":");
    if (!bracketed && parts.length > 2) return undefined;
    const [host, port] = bracketed
      ? [bracketed[1] ?? "", bracketed[2]]
      : [parts[0] ?? "", parts[1]];
    if (port !== undefined && !(PORT.test(port) && Number(port) <= 65_535)) return undefined;
    if (bracketed && !ipaddr.IPv6.isValid(host)) return undefined;
    if (ipaddr.IPv6.isValid(host)) return { range: [ipaddr.parse(host), 128], port };
    if (ipaddr.IPv4.isValidFourPartDecimal(host)) return { range: [ipaddr.parse(host), 32], port };
    return HOSTNAME.test(host) ? { host, port } : undefined;
  } catch {
    return undefined;
  }
}
