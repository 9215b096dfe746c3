import { createMiddleware } from "hono/factory";
import { afterResponse } from "../http/after-response";
import type { AppEnv } from "../http/app-env";
import { requestServices } from "../http/service-context";
import type { DatabaseSession, Ports } from "../ports";
import type { Services } from "../services/context";

/**
 * Puts the ports, a request-scoped logger, a lazily opened database handle and the services
 * context of the request on `c.var`.
 * Routes that never touch the database (token verification) never open a connection.
 *
 * @example
 * app.use(requestContext(ports));
 * app.get("/x", (c) => c.json(await c.get("db")().select().from(apps)));
 */
export function requestContext(ports: Ports, services: Services) {
  return createMiddleware<AppEnv>(async function requestContext(c, next) {
    let session: DatabaseSession | undefined;
    c.set("ports", ports);
    c.set("logger", ports.logger.child({ request_id: c.get("requestId") }));
    c.set("db", () => {
      session ??= ports.db.session();
      return session.db;
    });
    c.set("services", requestServices(c, services));
    try {
      await next();
    } finally {
      if (session) afterResponse(c, session.release(), "database session release");
    }
  });
}
