import type { Context } from "hono";
import type { LiveEvent } from "../ports";
import { afterResponse } from "./after-response";
import type { AppEnv } from "./app-env";

/** The part of Node's `ServerResponse` that says when the answer has gone out. */
interface NodeResponse {
  readonly closed: boolean;
  once(event: "close", listener: () => void): unknown;
}

/**
 * Resolves once the response has been written: on Node when its `ServerResponse` closes
 * (`@hono/node-server` passes it as `c.env.outgoing`; it closes once the answer is sent, or the
 * client went away); elsewhere at once, since Workers send the response as the handler returns.
 */
function responseWritten(c: Context<AppEnv>): Promise<void> {
  const outgoing = (c.env as { outgoing?: NodeResponse } | undefined)?.outgoing;
  if (typeof outgoing?.once !== "function" || outgoing.closed) return Promise.resolve();
  return new Promise((resolve) => outgoing.once("close", resolve));
}

/**
 * Publishes what a service says changed to the app's live rooms once the response is written:
 * the fan-out never holds up the answer.
 *
 * @example
 * const result = await ingestPoints(c.get("services"), scope, raws);
 * publishAfterResponse(c, scope.appId, result.events);
 */
export function publishAfterResponse(c: Context<AppEnv>, appId: string, events: LiveEvent[]) {
  if (events.length === 0) return;
  const { realtime } = c.get("services");
  afterResponse(
    c,
    responseWritten(c).then(() => realtime.publish(appId, events)),
    "live publish",
  );
}
