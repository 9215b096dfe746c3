import type { RouteHandler } from "@hono/zod-openapi";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, issuerBase } from "../../http/links";
import { ApiError } from "../../lib/errors";
import { appInScope } from "../../middleware/auth";
import { issuerFor } from "../../services/access-tokens";
import { issueSocketTicket } from "../../services/socket-auth";
import { subjectId } from "../../services/subject";
import type * as routes from "./live.routes";

export const createTicket: RouteHandler<typeof routes.createTicket, AppEnv> = async (c) => {
  const subject = c.get("subject");
  if (!subject || subject.kind === "admin")
    throw new ApiError("forbidden", "Tickets are for an app's callers");
  const app = appInScope(c);
  const { ticket, expiresAt } = await issueSocketTicket(
    c.var.services,
    app,
    {
      subjectId: subjectId(subject) ?? "",
      roles: subject.roles,
      permissions: subject.permissions,
      sessionId: "claims" in subject ? subject.claims.sid : undefined,
    },
    issuerFor(issuerBase(c), app.name),
  );
  const url = new URL(absoluteUrl(c, "/v1/ws"));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("ticket", ticket);
  c.header("Cache-Control", "no-store");
  return c.json(
    { data: { ticket, expires_at: expiresAt.toISOString(), url: url.toString() } },
    201,
  );
};
