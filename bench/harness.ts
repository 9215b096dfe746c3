/**
 * What every benchmark scenario shares: the database to run on, an app built from bench ports,
 * served on loopback, load from a separate process (autocannon), and Markdown for the report.
 */
import { spawn, spawnSync } from "node:child_process";
import { openSync, readFileSync, writeSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import pg from "pg";
import { createPasswordHasher } from "../src/adapters/argon2-hasher";
import { createConsoleLogger } from "../src/adapters/console-logger";
import { createLogEmailSender } from "../src/adapters/email/log";
import { createMemoryLimiter } from "../src/adapters/memory/limiter";
import { createMemoryRealtime } from "../src/adapters/memory/realtime";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { nodeArgon2 } from "../src/adapters/node/argon2";
import { createNodeOutboundNetwork } from "../src/adapters/node/outbound-network";
import { createStdoutLines } from "../src/adapters/node/stdout-lines";
import { createPgliteDatabase } from "../src/adapters/pglite/database";
import { createPostgresDatabase } from "../src/adapters/postgres/database";
import { createPwnedPasswords } from "../src/adapters/pwned-passwords";
import { systemClock } from "../src/adapters/system-clock";
import type { App } from "../src/app";
import { parseConfig } from "../src/config";
import { sha256Hex } from "../src/lib/crypto";
import type { DatabasePort, Ports } from "../src/ports";
import { noErrorReporter } from "../src/ports/error-reporter";
import { noGeoIp } from "../src/ports/geoip";

export const migrationsFolder = fileURLToPath(new URL("../drizzle", import.meta.url));
export const ADMIN_KEY = "hk_admin_bench_0123456789abcdefghijkl";
export const KEY_ENCRYPTION_SECRET = "bench-key-encryption-secret-0123456789abcdef";

/** Where a scenario runs: embedded PGlite, or the Postgres of BENCH/TEST_DATABASE_URL. */
export interface BenchDatabase {
  port: DatabasePort;
  label: string;
  /** The database's own URL when it is a Postgres server (for raw drivers). */
  url?: string;
  dispose(): Promise<void>;
}

export async function openBenchDatabase(kind: "pglite" | "postgres"): Promise<BenchDatabase> {
  const server = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (kind === "pglite" || !server) {
    const port = await createPgliteDatabase({ dataDir: "memory://", migrationsFolder });
    return { port, label: "PGlite (embedded, in memory)", dispose: () => port.close() };
  }
  const name = `heimdall_bench_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  const port = await createPostgresDatabase({ url: url.toString(), migrationsFolder });
  return {
    port,
    url: url.toString(),
    label: `PostgreSQL at ${url.host} (node-postgres)`,
    async dispose() {
      await port.close();
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * The bench configuration measures the code path alone: logging and rate limiting off. The
 * production configuration is what a deployment runs: `LOG_LEVEL=info` through the real logger
 * (its lines written once per turn to /dev/null, or BENCH_LOG_FILE, as the Node entry writes
 * stdout) and the rate limiter on, at limits no load run reaches, so every request is counted
 * and none refused.
 */
export type Configuration = "bench" | "production";

export const configurationLabel: Record<Configuration, string> = {
  bench: "bench configuration",
  production: "production configuration",
};

/** Per-minute limits of every class, far above what a load run sends. */
export const UNREACHED_LIMIT = "10000000";
const unreachedLimits = {
  RATE_LIMIT_ADMIN_PER_MINUTE: UNREACHED_LIMIT,
  RATE_LIMIT_TOKEN_PER_MINUTE: UNREACHED_LIMIT,
  RATE_LIMIT_AUTHORIZE_PER_MINUTE: UNREACHED_LIMIT,
  RATE_LIMIT_DEFAULT_PER_MINUTE: UNREACHED_LIMIT,
};

let logFile: number | undefined;
/**
 * Lines held and written together once per turn, as the Node entry's stdout lines are, and
 * synchronously, as stdout is written on Linux (a file or a pipe).
 */
const logLines = createStdoutLines((text) => {
  logFile ??= openSync(process.env.BENCH_LOG_FILE ?? "/dev/null", "a");
  writeSync(logFile, `${text}\n`);
});

/**
 * Production settings and memory adapters; `configuration` says whether logs and the rate
 * limiter are on (see Configuration), `env` and `ports` override.
 */
export async function benchPorts(
  db: DatabasePort,
  options: {
    env?: Record<string, string>;
    ports?: Partial<Ports>;
    configuration?: Configuration;
  } = {},
): Promise<Ports> {
  const production = options.configuration === "production";
  const config = parseConfig({
    APP_ENV: "production",
    ADMIN_API_KEY: ADMIN_KEY,
    KEY_ENCRYPTION_SECRET,
    PUBLIC_URL: "http://127.0.0.1",
    // Benchmarks reach loopback only, the breached-password range API included.
    BREACHED_PASSWORDS_API_URL: "http://127.0.0.1:9/range/",
    ...(production
      ? { LOG_LEVEL: "info", RATE_LIMIT_ENABLED: "true", ...unreachedLimits }
      : { LOG_LEVEL: "silent", RATE_LIMIT_ENABLED: "false" }),
    ...options.env,
  });
  const clock = systemClock;
  const logger = createConsoleLogger({
    level: config.LOG_LEVEL,
    fields: { service: "heimdall" },
    sink: logLines.write,
  });
  const revocations = createMemoryRevocationStore(clock);
  return {
    config,
    db,
    clock,
    logger,
    revocations,
    limiter: createMemoryLimiter(clock),
    realtime: createMemoryRealtime(),
    secrets: {
      adminKeyHash: await sha256Hex(ADMIN_KEY),
      keyEncryptionSecret: KEY_ENCRYPTION_SECRET,
    },
    passwords: createPasswordHasher(nodeArgon2, {
      memoryCost: config.PASSWORD_HASH_MEMORY_KIB,
      timeCost: config.PASSWORD_HASH_ITERATIONS,
    }),
    clientIp: () => undefined,
    geoip: noGeoIp,
    outboundNetwork: createNodeOutboundNetwork(),
    email: createLogEmailSender(logger),
    breachedPasswords: createPwnedPasswords({ baseUrl: config.BREACHED_PASSWORDS_API_URL, logger }),
    errors: noErrorReporter,
    ...options.ports,
  };
}

export interface Served {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves a fetch handler (Heimdall, a bare Hono app, a peer) on a free loopback port. */
export async function serveFetch(
  fetch: App["fetch"] | ((request: Request) => Response | Promise<Response>),
): Promise<Served> {
  const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }) as Server;
  // Longer than any pause between a scenario's steps: an idle client socket is never closed
  // under a request (ECONNRESET).
  server.keepAliveTimeout = 120_000;
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** JSON request helper for set-up steps (admin key unless another token is given). */
export async function call<T = Record<string, unknown>>(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; token?: string; form?: Record<string, string> } = {},
): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method: init.method ?? (init.body || init.form ? "POST" : "GET"),
    headers: init.form
      ? { Authorization: `Bearer ${init.token ?? ADMIN_KEY}` }
      : { "Content-Type": "application/json", Authorization: `Bearer ${init.token ?? ADMIN_KEY}` },
    body: init.form
      ? new URLSearchParams(init.form)
      : init.body
        ? JSON.stringify(init.body)
        : undefined,
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  non2xx: number;
}

/**
 * Load from a separate process: autocannon on loopback, bounded by `seconds` (and `amount` when
 * given). Latencies in ms.
 */
export async function load(options: {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  seconds?: number;
  amount?: number;
}): Promise<LoadResult> {
  const args = [
    "--json",
    "--connections",
    String(options.connections ?? 16),
    "--duration",
    String(options.seconds ?? Number(process.env.BENCH_SECONDS ?? 5)),
    "--method",
    options.method ?? "GET",
  ];
  if (options.amount) args.push("--amount", String(options.amount));
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    args.push("--headers", `${name}=${value}`);
  }
  if (options.body !== undefined) args.push("--body", options.body);
  args.push(options.url);
  const bin = fileURLToPath(new URL("../node_modules/autocannon/autocannon.js", import.meta.url));
  const result = await runJson<{
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    non2xx: number;
  }>([bin, ...args]);
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

/**
 * Runs `args` with this Node in a process of its own (a load generator), feeding it `input` on
 * stdin, and answers the JSON it prints.
 */
export function runJson<T>(args: string[], input?: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout?.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr?.on("data", (chunk) => {
      err += chunk;
    });
    child.once("error", reject);
    // "close", not "exit": the output has all arrived by then.
    child.once("close", (code) => {
      if (code !== 0) return reject(new Error(`${args[0]} exited ${code}: ${err}`));
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`${args[0]} printed no JSON result: ${out} ${err}`));
      }
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Resident memory now, in MiB, for "RSS at the end of each scenario". */
/** Clock ticks per second of /proc's CPU times. */
export const ticksPerSecond =
  Number(spawnSync("getconf", ["CLK_TCK"]).stdout?.toString().trim()) || 100;

/**
 * The CPU time (user + system) in ms of a process or thread, from its `stat` file under /proc
 * (`/proc/<pid>/stat`, `/proc/self/task/<tid>/stat`).
 */
export function procCpuMs(statPath: string) {
  const stat = readFileSync(statPath, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
}

export const rssMiB = () => Math.round(process.memoryUsage().rss / 1024 / 1024);

export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

export const fmt = (value: number, digits = 0) =>
  value.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A Markdown table. */
export function table(headers: string[], rows: Array<Array<string | number>>) {
  return [
    `| ${headers.join(" | ")} |`,
    `| ${headers.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}

/** A scenario: measures and answers its section of bench/results.md. */
export interface Scenario {
  name: string;
  run(): Promise<string>;
}
