import type { Context } from "hono";
import type { AppEnv } from "./app-env";

/**
 * Lets `work` finish after the response: on Workers the isolate is kept for it
 * (`waitUntil`); Node has no ExecutionContext and the work simply runs on. A failure is logged
 * as `<what> failed`, never thrown at the caller.
 *
 * @example
 * afterResponse(c, session.release(), "database session release");
 */
export function afterResponse(c: Context<AppEnv>, work: Promise<unknown>, what: string) {
  const settled = work.catch((error: unknown) => c.var.logger.warn(`${what} failed`, { error }));
  try {
    c.executionCtx.waitUntil(settled);
  } catch {
    // Node: no ExecutionContext.
  }
}
