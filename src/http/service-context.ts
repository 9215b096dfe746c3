import type { Context } from "hono";
import type { GeoLocation } from "../ports";
import type { AuditSource, ServiceContext, Services } from "../services/context";
import type { Grantor } from "../services/permissions";
import { subjectId } from "../services/subject";
import type { AppEnv } from "./app-env";

/** The audit source of a request: its authenticated subject, IP and user agent. */
export function auditSource(c: Context<AppEnv>): AuditSource {
  const subject = c.get("subject");
  const ipAddress = c.get("ports").clientIp(c.req.raw, c.env) ?? null;
  let location: GeoLocation | null | undefined;
  return {
    actorType: subject ? subject.kind : "anonymous",
    actorId: subject ? subjectId(subject) : null,
    ipAddress,
    userAgent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    location: () => {
      location ??= c.get("ports").geoip.locate(ipAddress, c.req.raw);
      return location;
    },
  };
}

/**
 * The request's {@link ServiceContext}: the services, with the audit source and grantor read when
 * a service asks (after `guard()` has named the subject) and the database opened on first read of
 * `db`. `db` is not enumerable, so spreading the context never opens a connection.
 */
export function requestServices(c: Context<AppEnv>, services: Services): ServiceContext {
  return Object.defineProperties(
    // The request's logger: what services log carries its request id.
    { ...services, logger: c.get("logger") },
    {
      db: { get: () => c.get("db")(), enumerable: false },
      audit: { get: () => auditSource(c), enumerable: true },
      grantor: { get: () => grantorOf(c), enumerable: true },
    },
  ) as ServiceContext;
}

/** The platform admin grants anything; anyone else what they hold (anonymous: nothing). */
function grantorOf(c: Context<AppEnv>): Grantor {
  const subject = c.get("subject");
  if (subject?.kind === "admin") return { kind: "platform" };
  return { kind: "app", permissions: subject?.permissions ?? [] };
}
