import { and, eq } from "drizzle-orm";
import { decodeProtectedHeader } from "jose";
import type { RoomHost } from "../../party/room";
import { devices } from "../db/schema";
import type { DatabasePort, TokenRevocationQuery } from "../ports";
import { withDatabase } from "../ports/database";
import {
  signAccessToken,
  socketTicketProfile,
  subjectsOf,
  TokenRejected,
  verifyAccessToken,
} from "./access-tokens";
import { API_KEY_PREFIX } from "./api-key-verifier";
import { type AppRecord, settingsOf } from "./apps";
import { type ServiceContext, type Services, systemContext } from "./context";

export const SOCKET_TICKET_TTL_SECONDS = 60;

/** Who is on a live socket, and how to tell later that their credential was revoked. */
export interface Principal {
  appId: string;
  subjectId: string;
  permissions: string[];
  revocation: TokenRevocationQuery;
}

/** A single-use ticket carrying the caller's grants, valid for 60 s. */
export async function issueSocketTicket(
  ctx: ServiceContext,
  app: AppRecord,
  grant: {
    subjectId: string;
    roles: string[];
    permissions: string[];
    sessionId?: string | undefined;
  },
  issuer: string,
) {
  const { token, claims } = await signAccessToken(ctx, {
    issuer,
    app: { id: app.id, name: app.name, alg: settingsOf(app).signing_algorithm },
    subject: grant.subjectId,
    roles: grant.roles,
    permissions: grant.permissions,
    ttlSeconds: SOCKET_TICKET_TTL_SECONDS,
    sessionId: grant.sessionId,
    profile: socketTicketProfile,
  });
  return { ticket: token, expiresAt: new Date(claims.exp * 1000) };
}

/**
 * The principal of a socket credential: a ticket (used once), an access token or an API key.
 * Undefined when it is not valid.
 */
export async function principalOf(
  ctx: ServiceContext,
  credential: string,
  issuerBase: string,
): Promise<Principal | undefined> {
  if (credential.startsWith(API_KEY_PREFIX)) {
    const grant = await ctx.apiKeys.verify(() => ctx.db, credential);
    if (!grant) return undefined;
    return {
      appId: grant.appId,
      subjectId: grant.keyId,
      permissions: grant.permissions,
      revocation: {
        tokenId: grant.keyId,
        issuedAt: grant.createdAt,
        subjects: [`app:${grant.appId}`],
      },
    };
  }
  let type: string | undefined;
  try {
    type = decodeProtectedHeader(credential).typ;
  } catch {
    return undefined;
  }
  const ticket = type === socketTicketProfile.type;
  try {
    const claims = await verifyAccessToken(
      ctx,
      credential,
      issuerBase,
      ticket ? socketTicketProfile : undefined,
    );
    // Spent in one atomic step: of concurrent sockets opened with one ticket, one gets in.
    if (ticket && !(await ctx.revocations.spend(claims.jti, new Date(claims.exp * 1000)))) {
      return undefined;
    }
    const issuedAt = new Date(claims.iat * 1000);
    return {
      appId: claims.app,
      subjectId: claims.sub,
      permissions: claims.permissions,
      // A ticket's own id is spent at once; what keeps the socket open is what it was made for.
      revocation: {
        tokenId: ticket ? (claims.sub.startsWith("key_") ? claims.sub : "-") : claims.jti,
        issuedAt,
        subjects: subjectsOf(claims),
      },
    };
  } catch (error) {
    if (error instanceof TokenRejected) return undefined;
    throw error;
  }
}

/**
 * What a live room asks of Heimdall, from the services of the runtime it runs in: sockets
 * authenticate like REST callers (tokens issued under `PUBLIC_URL`, or the socket's origin),
 * `gps:<device_id>` is checked against the caller's app, revocations are looked up in the
 * shared store (all the room's sockets at once).
 */
export function liveRoomHost(services: Services, database: DatabasePort): RoomHost<Principal> {
  return {
    authenticate: (credential, origin) =>
      withDatabase(database, (db) =>
        principalOf(systemContext(services, db), credential, services.config.PUBLIC_URL ?? origin),
      ),
    deviceBelongsTo: (deviceId, appId) =>
      withDatabase(database, async (db) => {
        const [row] = await db()
          .select({ id: devices.id })
          .from(devices)
          .where(and(eq(devices.id, deviceId), eq(devices.app_id, appId)));
        return Boolean(row);
      }),
    revokedAmong: (principals) =>
      services.revocations.revokedAmong(principals.map((principal) => principal.revocation)),
    now: () => services.clock.now().getTime(),
    reportError: (message, error) => services.logger.error(message, { error }),
  };
}
