import type { Context } from "hono";
import { withDatabase } from "../ports/database";
import { systemContext } from "../services/context";
import { deliverDueEmail } from "../services/email-delivery";
import { afterResponse } from "./after-response";
import type { AppEnv } from "./app-env";

/**
 * Delivers the outbox rows a request queued once its answer is on its way. The work opens its
 * own database session (the request's is released when the response is done) and acts as the
 * system; whatever the sender does, the answer is already decided. Rows it cannot hand over
 * stay pending for the scheduled job.
 *
 * @example
 * const { user, emailIds } = await service.signUp(c.var.services, app, body);
 * deliverEmailAfterResponse(c, emailIds);
 */
export function deliverEmailAfterResponse(c: Context<AppEnv>, ids: string[]) {
  if (ids.length === 0) return;
  const services = c.var.services;
  const work = withDatabase(c.var.ports.db, (db) =>
    deliverDueEmail(systemContext(services, db), { ids }),
  );
  afterResponse(c, work, "email delivery");
}
