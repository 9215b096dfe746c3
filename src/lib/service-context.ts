import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { subjectId } from "../middleware/auth";
import type { AuditSource, ServiceContext } from "../services/audit";

/** The audit source of a request: its authenticated subject, IP and user agent. */
export function auditSource(c: Context<AppEnv>): AuditSource {
  const subject = c.get("subject");
  return {
    actorType: subject ? subject.kind : "anonymous",
    actorId: subject ? subjectId(subject) : null,
    ipAddress: c.var.ports.clientIp(c.req.raw, c.env) ?? null,
    userAgent: c.req.header("user-agent")?.slice(0, 512) ?? null,
  };
}

/** What a service needs from a request: its database handle, the clock, the audit source. */
export function serviceContext(c: Context<AppEnv>): ServiceContext {
  return { db: c.var.db(), clock: c.var.ports.clock, audit: auditSource(c) };
}
