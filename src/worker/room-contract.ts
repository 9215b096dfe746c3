import type { Server } from "partyserver";
import type { LiveEvent } from "../ports/realtime";
import type { Principal } from "../services/socket-auth";

/** Set by the Worker only, on the upgrade it forwards: who the socket authenticated as. */
export const PRINCIPAL_HEADER = "x-heimdall-principal";
/** Set by the Worker only: the client's address (`CF-Connecting-IP`), for bans and the cap. */
export const CLIENT_IP_HEADER = "x-heimdall-client-ip";

/** What the Worker calls on an app's room by RPC; `GpsRoom` (party/gps-room.ts) implements it. */
export type LiveRoomServer = Server & { publish(events: readonly LiveEvent[]): Promise<void> };

/** Bindings declared in `wrangler.toml`; string settings arrive as vars and secrets. */
export interface WorkerEnv {
  GPS_ROOM: DurableObjectNamespace<LiveRoomServer>;
  [setting: string]: unknown;
}

/** A principal as text, to hand a socket authenticated by the Worker to its room. */
export function encodePrincipal(principal: Principal): string {
  return JSON.stringify(principal);
}

export function decodePrincipal(text: string): Principal {
  const parsed = JSON.parse(text) as Principal & { revocation: { issuedAt: string } };
  return {
    ...parsed,
    revocation: { ...parsed.revocation, issuedAt: new Date(parsed.revocation.issuedAt) },
  };
}
