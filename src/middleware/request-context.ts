import type { Context } from "hono";
import { afterResponse } from "../http/after-response";
import type { AppEnv } from "../http/app-env";
import type { RequestServices } from "../http/service-context";
import type { DatabaseSession, Ports } from "../ports";

/**
 * Puts the ports, a request-scoped logger, a lazily opened database handle and the services
 * context of the request on the context, and answers what releases the database session once
 * the response is done. Routes that never touch the database (token verification) never open a
 * connection.
 *
 * @example
 * const release = openRequestContext(c, ports, requestServices, requestId);
 * await next();
 * release();
 */
export function openRequestContext(
  c: Context<AppEnv>,
  ports: Ports,
  requestServices: RequestServices,
  requestId: string,
): () => void {
  let session: DatabaseSession | undefined;
  c.set("ports", ports);
  c.set("logger", ports.logger.child({ request_id: requestId }));
  c.set("db", () => {
    session ??= ports.db.session();
    return session.db;
  });
  c.set("services", requestServices(c));
  return () => {
    if (session) afterResponse(c, session.release(), "database session release");
  };
}
