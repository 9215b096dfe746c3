import type { Context } from "hono";
import { afterResponse } from "../../http/after-response";
import type { AppEnv } from "../../http/app-env";
import { serviceContext } from "../../http/service-context";
import { ApiError } from "../../lib/errors";
import { appInScope } from "../../middleware/auth";
import { ingestPoints } from "../../services/ingest";

/**
 * Validates and stores raw points for the request's device (its secret) or, with a user token
 * or API key, for the devices the points name; announces what was stored once it is.
 */
export async function ingest(c: Context<AppEnv>, raws: unknown[], externalId?: string) {
  const device = c.get("device");
  const appId = device?.appId ?? appInScope(c).id;
  const result = await ingestPoints(serviceContext(c), { appId, device }, raws, externalId);
  // Stored, so it may be announced; the fan-out never holds up the tracker's answer.
  if (result.events.length > 0) {
    afterResponse(c, c.var.ports.realtime.publish(appId, result.events), "live publish");
  }
  return result;
}

/** Nothing valid at all is a 400 naming every bad point. */
export function assertSomeAccepted(result: Awaited<ReturnType<typeof ingest>>, total: number) {
  if (total > 0 && result.rejected.length === total) {
    throw new ApiError("validation_error", "No valid point in the request", {
      details: result.rejected.flatMap(({ index, reasons }) =>
        reasons.map(({ field, reason }) => ({ field: `points[${index}].${field}`, reason })),
      ),
    });
  }
}
