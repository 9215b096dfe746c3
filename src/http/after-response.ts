import type { Context, ExecutionContext } from "hono";
import type { AppEnv } from "./app-env";

/**
 * The execution context of a request the runtime passes none for (Node): nothing holds the
 * process for the work, which simply runs on. `createApp` passes it then, because Hono's
 * `c.executionCtx` throws where there is none, and a throw per request is not free.
 */
export const workRunsOn: ExecutionContext = {
  waitUntil() {},
  passThroughOnException() {},
  props: {},
};

/**
 * Lets `work` finish after the response: on Workers the isolate is kept for it (`waitUntil`);
 * on Node the work simply runs on. A failure is logged as `<what> failed`, never thrown at the
 * caller.
 *
 * @example
 * afterResponse(c, session.release(), "database session release");
 */
export function afterResponse(c: Context<AppEnv>, work: Promise<unknown>, what: string) {
  const settled = work.catch((error: unknown) => c.get("logger").warn(`${what} failed`, { error }));
  c.executionCtx.waitUntil(settled);
}
