import type { Context } from "hono";
import type { GeoLocation } from "../ports";
import type { AuditSource, ServiceContext, Services } from "../services/context";
import type { Grantor } from "../services/permissions";
import { subjectId } from "../services/subject";
import type { AppEnv } from "./app-env";
import { clientAddressOf } from "./client-address";

/** The audit source of a request: its authenticated subject, IP and user agent. */
export function auditSource(c: Context<AppEnv>): AuditSource {
  const subject = c.get("subject");
  const ipAddress = clientAddressOf(c) ?? null;
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

/** Builds the {@link ServiceContext} of a request. */
export type RequestServices = (c: Context<AppEnv>) => ServiceContext;

/**
 * The request's {@link ServiceContext}: the process's services as its prototype (nothing is
 * copied per request), with the request's logger, the audit source and grantor read when a
 * service asks (after `guard()` has named the subject) and the database opened on first read of
 * `db`. Like every ServiceContext it is passed, never spread (a spread keeps only its own fields).
 */
export function requestServicesOf(services: Services): RequestServices {
  class RequestServiceContext {
    readonly #c: Context<AppEnv>;
    readonly logger: ServiceContext["logger"];
    constructor(c: Context<AppEnv>) {
      this.#c = c;
      // The request's logger: what services log carries its request id.
      this.logger = c.get("logger");
    }
    get db() {
      return this.#c.get("db")();
    }
    get audit() {
      return auditSource(this.#c);
    }
    get grantor() {
      return grantorOf(this.#c);
    }
  }
  Object.setPrototypeOf(RequestServiceContext.prototype, services);
  return (c) => new RequestServiceContext(c) as unknown as ServiceContext;
}

/** The platform admin grants anything; anyone else what they hold (anonymous: nothing). */
function grantorOf(c: Context<AppEnv>): Grantor {
  const subject = c.get("subject");
  if (subject?.kind === "admin") return { kind: "platform" };
  return { kind: "app", permissions: subject?.permissions ?? [] };
}
