import { fileURLToPath } from "node:url";
import { createConsoleLogger } from "../../src/adapters/console-logger";
import { createMemoryLimiter } from "../../src/adapters/memory/limiter";
import { createMemoryRevocationStore } from "../../src/adapters/memory/revocations";
import { createPgliteDatabase } from "../../src/adapters/pglite/database";
import { createApp } from "../../src/app";
import { parseConfig } from "../../src/config";
import type { Clock, DatabasePort, Ports } from "../../src/ports";

export const migrationsFolder = fileURLToPath(new URL("../../drizzle", import.meta.url));

/** A clock tests can move. */
export function createTestClock(start = new Date("2026-11-23T10:00:00.000Z")) {
  let now = start.getTime();
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
  } satisfies Clock & { advance(ms: number): void };
}

/** An embedded PGlite in memory with the migrations applied (~3 s: open once per file). */
export function createMemoryDatabase(): Promise<DatabasePort> {
  return createPgliteDatabase({ dataDir: "memory://", migrationsFolder });
}

export type LogEvent = { level: string; message: string; [field: string]: unknown };

/**
 * The app on embedded defaults (the given database, memory adapters), with its log events
 * captured in `logs` instead of printed.
 *
 * @example
 * const { app, logs } = createTestApp({ db });
 * const res = await app.request("/health");
 */
export function createTestApp(options: {
  db: DatabasePort;
  env?: Record<string, string>;
  ports?: Partial<Ports>;
}) {
  const logs: LogEvent[] = [];
  const config = parseConfig({ APP_ENV: "test", ...options.env });
  const clock = createTestClock();
  const ports: Ports = {
    config,
    db: options.db,
    clock,
    revocations: createMemoryRevocationStore(clock),
    limiter: createMemoryLimiter(clock),
    logger: createConsoleLogger({ level: "debug", sink: (line) => logs.push(JSON.parse(line)) }),
    ...options.ports,
  };
  return { app: createApp(ports), ports, logs };
}
