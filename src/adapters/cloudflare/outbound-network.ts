import type { OutboundNetwork } from "../../ports/outbound";

/**
 * Outbound requests on Workers: the runtime resolves names inside its own fetch and gives
 * Heimdall no resolver (DNS-over-HTTPS would be a third party), and a Worker's fetch cannot
 * reach the operator's private networks anyway. So the policy checks IP literals and the
 * allowlist; names are left to Cloudflare's network.
 */
export const workersOutboundNetwork: OutboundNetwork = {
  resolveHost: async () => undefined,
  send: (request) => fetch(request, { redirect: "manual" }),
};
