import { sql } from "drizzle-orm";
import type { ServiceContext } from "./context";

export type CheckStatus = "ok" | "error";

export interface HealthReport {
  status: CheckStatus;
  checks: { db: CheckStatus; cache: CheckStatus };
}

/** Runs the dependency checks side by side; a check that takes longer than `timeoutMs` fails. */
export async function checkHealth(
  ctx: ServiceContext,
  options: { timeoutMs: number; onFailure?: (check: string, error: unknown) => void },
): Promise<HealthReport> {
  const run = async (name: string, probe: () => Promise<unknown>): Promise<CheckStatus> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timed out after ${options.timeoutMs} ms`)),
        options.timeoutMs,
      );
    });
    try {
      await Promise.race([probe(), timeout]);
      return "ok";
    } catch (error) {
      options.onFailure?.(name, error);
      return "error";
    } finally {
      clearTimeout(timer);
    }
  };

  const [db, cache] = await Promise.all([
    run("db", () => ctx.db.execute(sql`select 1`)),
    run("cache", () => ctx.revocations.ping()),
  ]);
  return { status: db === "ok" && cache === "ok" ? "ok" : "error", checks: { db, cache } };
}
