import type { Context } from "hono";
import type { LiveEvent } from "../ports";
import { afterResponse } from "./after-response";
import type { AppEnv } from "./app-env";

/**
 * Publishes what a service says changed to the app's live rooms once the response is on its
 * way: the fan-out never holds up the answer.
 *
 * @example
 * const result = await ingestPoints(c.get("services"), scope, raws);
 * publishAfterResponse(c, scope.appId, result.events);
 */
export function publishAfterResponse(c: Context<AppEnv>, appId: string, events: LiveEvent[]) {
  if (events.length === 0) return;
  afterResponse(c, c.get("services").realtime.publish(appId, events), "live publish");
}
