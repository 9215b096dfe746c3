import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config";
import { clientIpOf, parseProxyTrust } from "../src/lib/client-ip";

const headersOf = (headers: Record<string, string>) => (name: string) => headers[name];

describe("the client address behind proxies (TRUST_PROXY)", () => {
  const spoof = { "x-forwarded-for": "6.6.6.6", "cf-connecting-ip": "7.7.7.7" };
  // [TRUST_PROXY, socket peer, headers, client address Heimdall must see]
  const matrix: Array<[string | undefined, string, Record<string, string>, string]> = [
    // Off by default: headers are never believed.
    [undefined, "203.0.113.9", spoof, "203.0.113.9"],
    [undefined, "127.0.0.1", spoof, "127.0.0.1"],
    [undefined, "::ffff:203.0.113.9", {}, "203.0.113.9"],
    // A trusted proxy's X-Forwarded-For names the client.
    ["127.0.0.1", "127.0.0.1", { "x-forwarded-for": "198.51.100.4" }, "198.51.100.4"],
    ["127.0.0.1", "::ffff:127.0.0.1", { "x-forwarded-for": "198.51.100.4" }, "198.51.100.4"],
    ["10.0.0.0/8", "10.1.2.3", { "x-forwarded-for": "2001:db8::7" }, "2001:db8::7"],
    // An untrusted peer's headers are ignored.
    ["10.0.0.0/8", "203.0.113.9", { "x-forwarded-for": "198.51.100.4" }, "203.0.113.9"],
    ["10.0.0.0/8", "203.0.113.9", spoof, "203.0.113.9"],
    // Walked from the right: what the client wrote itself, left of its own address, is ignored.
    [
      "10.0.0.0/8",
      "10.0.0.1",
      { "x-forwarded-for": "6.6.6.6, 198.51.100.4, 10.0.0.2" },
      "198.51.100.4",
    ],
    ["10.0.0.0/8", "10.0.0.1", { "x-forwarded-for": "6.6.6.6, 198.51.100.4" }, "198.51.100.4"],
    // Every hop trusted: the leftmost is the client.
    ["10.0.0.0/8", "10.0.0.1", { "x-forwarded-for": "10.0.0.3, 10.0.0.2" }, "10.0.0.3"],
    // A hop that is no address ends the walk at the last trusted one.
    ["10.0.0.0/8", "10.0.0.1", { "x-forwarded-for": "198.51.100.4, junk" }, "10.0.0.1"],
    ["10.0.0.0/8", "10.0.0.1", {}, "10.0.0.1"],
    // CF-Connecting-IP only with `cloudflare`, and only from a trusted peer (Cloudflare's edge).
    ["10.0.0.0/8", "10.0.0.1", { "cf-connecting-ip": "7.7.7.7" }, "10.0.0.1"],
    ["cloudflare", "173.245.48.10", { "cf-connecting-ip": "198.51.100.4" }, "198.51.100.4"],
    ["cloudflare", "2606:4700::1", { "cf-connecting-ip": "2001:db8::9" }, "2001:db8::9"],
    ["cloudflare", "203.0.113.9", { "cf-connecting-ip": "198.51.100.4" }, "203.0.113.9"],
    ["cloudflare", "203.0.113.9", spoof, "203.0.113.9"],
    // cloudflared on the same host.
    ["cloudflare, 127.0.0.1", "127.0.0.1", { "cf-connecting-ip": "198.51.100.4" }, "198.51.100.4"],
    ["cloudflare", "173.245.48.10", { "x-forwarded-for": "198.51.100.4" }, "198.51.100.4"],
    ["false", "127.0.0.1", spoof, "127.0.0.1"],
  ];

  it.each(matrix)("TRUST_PROXY=%s, peer %s, %j → %s", (setting, peer, headers, expected) => {
    const config = parseConfig(setting === undefined ? {} : { TRUST_PROXY: setting });
    expect(clientIpOf(peer, headersOf(headers), config.TRUST_PROXY)).toBe(expected);
  });

  it("refuses a TRUST_PROXY entry that is no address, range or cloudflare", () => {
    expect(() => parseConfig({ TRUST_PROXY: "10.0.0.0/8, proxy.local" })).toThrow(/TRUST_PROXY/);
    expect(() => parseConfig({ TRUST_PROXY: "10.0.0.0/33" })).toThrow(/TRUST_PROXY/);
    expect(parseProxyTrust("cloudflare").cloudflare).toBe(true);
  });
});
