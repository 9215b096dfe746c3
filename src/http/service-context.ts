import type { Context } from "hono";
import { failOpen } from "../adapters/fail-open-limiter";
import type { GeoLocation } from "../ports";
import type { AuditSource, ServiceContext } from "../services/audit";
import { createBruteForceGuard } from "../services/brute-force";
import type { Grantor } from "../services/permissions";
import type { TokenDeps } from "../services/sessions";
import { subjectId } from "../services/subject";
import type { AppEnv } from "./app-env";

/** The audit source of a request: its authenticated subject, IP and user agent. */
export function auditSource(c: Context<AppEnv>): AuditSource {
  const subject = c.get("subject");
  const ipAddress = c.var.ports.clientIp(c.req.raw, c.env) ?? null;
  let location: GeoLocation | null | undefined;
  return {
    actorType: subject ? subject.kind : "anonymous",
    actorId: subject ? subjectId(subject) : null,
    ipAddress,
    userAgent: c.req.header("user-agent")?.slice(0, 512) ?? null,
    location: () => {
      location ??= c.var.ports.geoip.locate(ipAddress, c.req.raw);
      return location;
    },
  };
}

/** What a service needs from a request: its database handle, the clock, the audit source. */
export function serviceContext(c: Context<AppEnv>): ServiceContext {
  return { db: c.var.db(), clock: c.var.ports.clock, audit: auditSource(c), grantor: grantorOf(c) };
}

/** The platform admin grants anything; anyone else what they hold (anonymous: nothing). */
function grantorOf(c: Context<AppEnv>): Grantor {
  const subject = c.get("subject");
  if (subject?.kind === "admin") return { kind: "platform" };
  return { kind: "app", permissions: subject?.permissions ?? [] };
}

/** What the token services need from the ports, brute-force protection included. */
export function tokenDeps(c: Context<AppEnv>): TokenDeps {
  const { keys, passwords, revocations, sealer, limiter, logger, clock, config } = c.var.ports;
  return {
    keys,
    passwords,
    revocations,
    sealer,
    bruteForce: createBruteForceGuard({
      config,
      limiter: failOpen(limiter, logger),
      revocations,
      clock,
    }),
  };
}
