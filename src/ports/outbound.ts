/**
 * The network under the outbound-fetch policy (src/services/outbound.ts): how the runtime
 * resolves a host name, and sends a request connecting only to addresses the policy admits.
 */
export interface OutboundNetwork {
  /**
   * The addresses a host name resolves to; `undefined` where the runtime resolves names only
   * inside its own fetch (Workers), so no answer can be checked in advance.
   */
  resolveHost(hostname: string): Promise<string[] | undefined>;
  /**
   * Sends `request` once, following no redirect. Where the runtime lets Heimdall resolve the name
   * for the connection (Node), the connection goes only to an address `admit` accepts, checked in
   * that very lookup so a name cannot resolve to another address between check and connect.
   */
  send(request: Request, admit: (address: string) => boolean): Promise<Response>;
}
