/**
 * Authorization, sign-in and rate limits, each next to a reference in the same run:
 * `GET /v1` against a bare Hono route answering the same JSON; `POST /v1/authorize` against an
 * equivalent authorizer on bare Hono (and the floor, one that only parses the body), both in the
 * bench and the production configuration; Heimdall's password grant against better-auth's email
 * sign-in at equal argon2id cost on the same Postgres server; the same routes with each limiter
 * of `limiterVariants` (memory, and the Upstash limiter through a local Upstash-REST shim over
 * the real Redis of BENCH_REDIS_URL/TEST_REDIS_URL).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { type BetterAuthOptions, betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { getMigrations } from "better-auth/db/migration";
import { count } from "drizzle-orm";
import { Hono } from "hono";
import { decodeJwt, decodeProtectedHeader, importJWK, type JWK, jwtVerify } from "jose";
import pg from "pg";
import { createPasswordHasher, DEFAULT_ARGON2_PARAMS } from "../../src/adapters/argon2-hasher";
import { createConsoleLogger } from "../../src/adapters/console-logger";
import { createMemoryLimiter } from "../../src/adapters/memory/limiter";
import { nodeArgon2 } from "../../src/adapters/node/argon2";
import { createNodeRedis } from "../../src/adapters/node/redis";
import { createRedisLimiter } from "../../src/adapters/redis/limiter";
import { systemClock } from "../../src/adapters/system-clock";
import { createUpstashRedis } from "../../src/adapters/upstash/redis";
import { createApp } from "../../src/app";
import { sessions } from "../../src/db/schema";
import type { Limiter, Ports } from "../../src/ports";
import {
  type BenchDatabase,
  benchPorts,
  call,
  configurationLabel,
  fmt,
  type LoadResult,
  load,
  openBenchDatabase,
  percentile,
  procCpuMs,
  rssMiB,
  type Scenario,
  type Served,
  serveFetch,
  table,
  UNREACHED_LIMIT,
} from "../harness";
import { meet, notRun } from "../targets";

const APP = "bench-auth";
const EMAIL = "jane@acme.co";
const PASSWORD = "correct horse battery staple";
const PERMISSION = "projects:read";
/** Sign-in is CPU-bound on one event loop: more connections only lengthen the queue. */
const SIGN_IN_CONNECTIONS = 8;
const WARM_UP_SECONDS = 1;
/**
 * Sign-ins each server answers before the first round, not in the figures: at ~100 a second a
 * run's 1 s warm-up leaves the sign-in path's code still being compiled (the first 300 sign-ins
 * cost the event loop 1.3–1.4× the CPU of the next ones).
 */
const SIGN_IN_WARM_UP = 400;
const JSON_HEADERS = { "content-type": "application/json" };
const betterAuthVersion = (
  JSON.parse(
    readFileSync(new URL("../../node_modules/better-auth/package.json", import.meta.url), "utf8"),
  ) as { version: string }
).version;

interface Measured extends LoadResult {
  label: string;
  /** Requests of the warm-up run before it, not in the figures. */
  warmUpRequests: number;
  /** CPU time of the event loop's thread during the measured run, its warm-up not included. */
  loopCpuMs?: number | undefined;
}

/**
 * CPU time of this process's main thread, the one running the event loop, in ms (Linux's
 * `/proc`; undefined elsewhere): the libuv pool's threads are not in it.
 */
function mainThreadCpuMs(): number | undefined {
  try {
    return procCpuMs(`/proc/self/task/${process.pid}/stat`);
  } catch {
    return undefined;
  }
}

function loopCpuLine(perSignInMs: number[], hashMs: number) {
  if (perSignInMs.length === 0) {
    notRun("sign-in-loop", "no per-thread CPU times on this system (Linux's /proc)");
    return "";
  }
  return `The event loop's thread spent ${perSignInMs.map((ms) => `${fmt(ms, 2)} ms`).join(" and ")} of CPU per sign-in in the two Heimdall rounds (its CPU time over the measured run over its answers, after ${SIGN_IN_WARM_UP} sign-ins and the run's warm-up; the hashing threads of libuv's pool are not in it): the worse round, ${meet("sign-in-loop", Math.max(...perSignInMs))}; one verification on the loop would put ${fmt(hashMs, 1)} ms or more there.`;
}

/** A short warm-up (JIT, caches, pools), then the measured run with the same settings. */
async function measure(label: string, options: Parameters<typeof load>[0]): Promise<Measured> {
  const warmUp = await load({ ...options, seconds: WARM_UP_SECONDS });
  if (warmUp.errors > 0 || warmUp.non2xx > 0) {
    throw new Error(`${label}: warm-up had ${warmUp.errors} errors, ${warmUp.non2xx} non-2xx`);
  }
  const loopBefore = mainThreadCpuMs();
  const result = await load(options);
  const loopAfter = mainThreadCpuMs();
  return {
    label,
    warmUpRequests: warmUp.requests,
    ...result,
    loopCpuMs:
      loopBefore === undefined || loopAfter === undefined ? undefined : loopAfter - loopBefore,
  };
}

/** Rounds of the limiter table: each limiter and no limiter once per round, alternating. */
const LIMITER_ROUNDS = Number(process.env.BENCH_LIMITER_ROUNDS ?? 6);
/** Requests of each run of the limiter table: the same work on every side. */
const LIMITER_RUN_REQUESTS = Number(process.env.BENCH_LIMITER_REQUESTS ?? 4000);

interface CpuMeasured extends Measured {
  /** User + system CPU of this process (where the servers run) per request of the run. */
  cpuMicrosPerRequest: number;
}

/**
 * A full garbage collection on demand, without starting Node with `--expose-gc`: run before each
 * measured run, it keeps one run's garbage from being collected on the next run's time.
 */
function garbageCollector() {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

/**
 * One run of `options` (no warm-up), with the CPU this process spent during it: the servers are
 * here, the load generator runs in a process of its own.
 */
async function measureCpu(
  label: string,
  options: Parameters<typeof load>[0],
  collectGarbage: () => void,
): Promise<CpuMeasured> {
  collectGarbage();
  const before = process.cpuUsage();
  const result = await load(options);
  const used = process.cpuUsage(before);
  return {
    label,
    warmUpRequests: 0,
    ...result,
    cpuMicrosPerRequest: (used.user + used.system) / Math.max(1, result.requests),
  };
}

const median = (values: number[]) => percentile(values, 50);

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

/** autocannon's latencies are whole milliseconds unless a run is very fast. */
const ms = (value: number) => fmt(value, Number.isInteger(value) || value >= 10 ? 0 : 1);

function loadRow(result: Measured, extra: Array<string | number> = []) {
  return [
    result.label,
    fmt(result.requestsPerSecond),
    ms(result.p50),
    ms(result.p99),
    fmt(result.requests),
    result.errors,
    result.non2xx,
    ...extra,
  ];
}

const LOAD_HEADERS = ["what", "req/s", "p50 ms", "p99 ms", "requests", "errors", "non-2xx"];

/** "" when every request of every run answered 2xx, else a bold line naming the runs that did not. */
function failures(results: Measured[]) {
  const bad = results.filter((r) => r.errors > 0 || r.non2xx > 0);
  if (bad.length === 0) return "Every request of these runs answered 2xx; no socket errors.";
  return `**Not every request succeeded:** ${bad
    .map((r) => `${r.label}: ${r.errors} errors, ${r.non2xx} non-2xx`)
    .join("; ")}.`;
}

/** Counts what the rate-limit middleware asks of a limiter, and answers that were not real. */
function counting(inner: Limiter) {
  const stats = { calls: 0, failures: 0 };
  const limiter: Limiter = {
    async limit(key, rule) {
      stats.calls += 1;
      try {
        const result = await inner.limit(key, rule);
        // @upstash/ratelimit answers a timeout with success and limit 0: a request let through
        // without being counted.
        if (result.limit !== rule.limit) stats.failures += 1;
        return result;
      } catch (error) {
        stats.failures += 1;
        throw error;
      }
    },
  };
  return { limiter, stats };
}

/**
 * The Upstash-REST shim of the tests in a process of its own, as the real Upstash is not in
 * Heimdall's process: its HTTP parsing must not run on the event loop being measured.
 */
async function startUpstashShim(redisUrl: string) {
  const shim = new URL("../../test/support/upstash-rest.ts", import.meta.url).href;
  const tsx = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href;
  const code = `
    import { startUpstashRest } from ${JSON.stringify(shim)};
    const server = await startUpstashRest({ redisUrl: ${JSON.stringify(redisUrl)} });
    process.stdout.write(JSON.stringify({ url: server.url, token: server.token }) + "\\n");
    process.on("SIGTERM", () => server.close().finally(() => process.exit(0)));
  `;
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", tsx, "--input-type=module", "--eval", code],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  try {
    const endpoint = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stdout?.on("data", (chunk) => {
        out += chunk;
        const line = out.split("\n")[0];
        if (out.includes("\n") && line) resolve(JSON.parse(line));
      });
      child.stderr?.on("data", (chunk) => {
        err += chunk;
      });
      child.once("exit", (code) => reject(new Error(`Upstash shim exited ${code}: ${err}`)));
      setTimeout(() => reject(new Error(`Upstash shim did not start: ${err}`)), 20_000).unref();
    });
    return { ...endpoint, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** better-auth on a database of its own on the same Postgres server, or in memory without one. */
async function openBetterAuthStore(heimdallDb: BenchDatabase) {
  const server = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!heimdallDb.url || !server) {
    const memory = { user: [], session: [], account: [], verification: [] };
    return {
      database: memoryAdapter(memory),
      label: "better-auth's memory adapter",
      migrate: async () => {},
      sessions: async () => memory.session.length,
      dispose: async () => {},
    };
  }
  const name = `heimdall_bench_ba_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: server });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(server);
  url.pathname = `/${name}`;
  // node-postgres' default pool size, 10: Heimdall's Postgres adapter uses the same.
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10 });
  return {
    database: pool,
    label: `a database of its own on ${url.host} (created and dropped by the scenario; a node-postgres pool through better-auth's Kysely adapter; schema from \`getMigrations\` of \`better-auth/db/migration\`)`,
    migrate: async (options: Parameters<typeof getMigrations>[0]) => {
      await (await getMigrations(options)).runMigrations();
    },
    sessions: async () =>
      Number((await pool.query<{ n: string }>(`select count(*) as n from "session"`)).rows[0]?.n),
    dispose: async () => {
      await pool.end();
      await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}

/**
 * A limiter to measure: the ports (and settings) it replaces in an otherwise bench-configured
 * Heimdall with rate limiting on. `target` puts its `/v1/authorize` cost in the summary.
 */
interface LimiterVariant {
  name: string;
  target: boolean;
  build(): Promise<{ ports: Partial<Ports> & { limiter: Limiter }; env?: Record<string, string> }>;
}

/** The name of the native Redis limiter's variant, which the summary looks for. */
const NATIVE_REDIS = "native Redis";

/**
 * The limiters of the overhead table, each beside no limiter at all: memory, and with a Redis the
 * native one (ioredis, as `REDIS_URL` on Node) and Upstash's REST client through the shim.
 */
function limiterVariants(redisUrl: string | undefined, closing: Array<() => Promise<void>>) {
  const variants: LimiterVariant[] = [
    {
      name: "memory",
      target: true,
      build: async () => ({ ports: { limiter: createMemoryLimiter(systemClock) } }),
    },
  ];
  if (redisUrl) {
    variants.push({
      name: NATIVE_REDIS,
      target: true,
      build: async () => {
        const redis = createNodeRedis({
          url: redisUrl,
          logger: createConsoleLogger({ level: "silent" }),
        });
        closing.push(() => redis.close());
        return {
          ports: {
            limiter: createRedisLimiter(redis, {
              prefix: `heimdall:bench:native:${Date.now().toString(36)}`,
            }),
          },
        };
      },
    });
    variants.push({
      name: "Upstash (REST shim over Redis)",
      target: false,
      build: async () => {
        const shim = await startUpstashShim(redisUrl);
        closing.push(shim.stop);
        const redis = createUpstashRedis({ url: shim.url, token: shim.token });
        return {
          ports: {
            limiter: createRedisLimiter(redis, {
              prefix: `heimdall:bench:${Date.now().toString(36)}`,
            }),
          },
          env: { UPSTASH_REDIS_REST_URL: shim.url, UPSTASH_REDIS_REST_TOKEN: shim.token },
        };
      },
    });
  }
  return variants;
}

async function run(): Promise<string> {
  const started = performance.now();
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const redisUrl = process.env.BENCH_REDIS_URL ?? process.env.TEST_REDIS_URL;
  const db = await openBenchDatabase("postgres");
  const closing: Array<() => Promise<void>> = [];
  const served = async (fetch: Parameters<typeof serveFetch>[0]): Promise<Served> => {
    const s = await serveFetch(fetch);
    closing.push(() => s.close());
    return s;
  };

  try {
    // Set-up: an app, a role with the permission, a user, and an access token from sign-in.
    const heimdall = await served(createApp(await benchPorts(db.port)).fetch);
    await call(heimdall.url, "/v1/apps", { body: { name: APP, display_name: "Bench auth" } });
    await call(heimdall.url, `/v1/apps/${APP}/roles`, {
      body: { name: "editor", display_name: "Editor", permissions: [PERMISSION, "projects:write"] },
    });
    await call(heimdall.url, `/v1/apps/${APP}/users`, {
      body: { email: EMAIL, display_name: "Jane", password: PASSWORD, role: "editor" },
    });
    const passwordGrant = JSON.stringify({
      grant_type: "password",
      email: EMAIL,
      password: PASSWORD,
    });
    const { access_token: accessToken } = await call<{ access_token: string }>(
      heimdall.url,
      `/v1/apps/${APP}/tokens`,
      { body: JSON.parse(passwordGrant) },
    );
    const authorizeBody = JSON.stringify({ token: accessToken, permission: PERMISSION });
    const decision = await call<{ allowed: boolean }>(heimdall.url, "/v1/authorize", {
      body: JSON.parse(authorizeBody),
    });
    if (decision.allowed !== true) throw new Error(`authorize: ${JSON.stringify(decision)}`);

    // The same database, logs and the rate limiter on: what a deployment answers.
    const production = await served(
      createApp(await benchPorts(db.port, { configuration: "production" })).fetch,
    );
    const bearer = { authorization: `Bearer ${accessToken}` };

    // 1. GET /v1 against a bare Hono route answering the same JSON.
    const rootRes = await fetch(`${heimdall.url}/v1`, { headers: bearer });
    const rootBody: unknown = await rootRes.json();
    if (!rootRes.ok) throw new Error(`GET /v1: ${rootRes.status} ${JSON.stringify(rootBody)}`);
    const bareRoot = await served(new Hono().get("/v1", (c) => c.json(rootBody as object)).fetch);
    const rootRuns = [
      await measure("Heimdall `GET /v1` (bearer access token)", {
        url: `${heimdall.url}/v1`,
        headers: bearer,
      }),
      await measure(
        `Heimdall \`GET /v1\` (bearer access token), ${configurationLabel.production}`,
        {
          url: `${production.url}/v1`,
          headers: bearer,
        },
      ),
      await measure("bare Hono `GET /v1` (answers the same JSON)", {
        url: `${bareRoot.url}/v1`,
        headers: bearer,
      }),
    ];
    const [rootHeimdall, rootProduction, rootBare] = rootRuns as [Measured, Measured, Measured];
    const rssRoot = rssMiB();

    // 2. POST /v1/authorize against an equivalent authorizer, and against the floor.
    const jwks = await call<{ keys: JWK[] }>(heimdall.url, `/v1/apps/${APP}/.well-known/jwks.json`);
    const kid = decodeProtectedHeader(accessToken).kid;
    const jwk = jwks.keys.find((key) => key.kid === kid);
    if (!jwk) throw new Error(`no key ${kid} in the app's JWKS`);
    // Imported once, as Heimdall caches its verification key.
    const publicKey = await importJWK(jwk, "RS256");
    const issuer = decodeJwt(accessToken).iss;
    const deny = {
      allowed: false,
      reason: "invalid_token",
      subject: null,
      app: null,
      permissions: [],
    };
    const equivalent = await served(
      new Hono().post("/v1/authorize", async (c) => {
        const body = await c.req.json<{ token?: unknown; permission?: unknown }>();
        if (typeof body.token !== "string" || typeof body.permission !== "string") {
          return c.json({ error: { code: "invalid_request" } }, 400);
        }
        let payload: Awaited<ReturnType<typeof jwtVerify>>["payload"];
        try {
          ({ payload } = await jwtVerify(body.token, publicKey, {
            algorithms: ["RS256"],
            typ: "at+jwt",
            issuer,
            audience: APP,
            clockTolerance: 5,
            requiredClaims: ["sub", "jti", "iat", "exp"],
          }));
        } catch {
          return c.json(deny);
        }
        const permissions = Array.isArray(payload.permissions) ? payload.permissions : [];
        const decision = { subject: payload.sub, app: payload.app, permissions };
        return c.json(
          permissions.includes(body.permission)
            ? { allowed: true, ...decision }
            : { allowed: false, reason: "missing_permission", ...decision },
        );
      }).fetch,
    );
    const equivalentDecision = await call(equivalent.url, "/v1/authorize", {
      body: JSON.parse(authorizeBody),
    });
    if (JSON.stringify(equivalentDecision) !== JSON.stringify(decision)) {
      throw new Error(
        `the equivalent authorizer answers ${JSON.stringify(equivalentDecision)}, Heimdall ${JSON.stringify(decision)}`,
      );
    }
    const floor = await served(
      new Hono().post("/v1/authorize", async (c) => {
        const body = await c.req.json<{ token?: unknown; permission?: unknown }>();
        return c.json({
          allowed: typeof body.token === "string" && body.permission === PERMISSION,
          subject: null,
          app: null,
          permissions: [],
        });
      }).fetch,
    );
    const authorizeLoad = { method: "POST", headers: JSON_HEADERS, body: authorizeBody };
    const authorizeRuns = [
      await measure("Heimdall `POST /v1/authorize` (RS256 access token, permission check)", {
        url: `${heimdall.url}/v1/authorize`,
        ...authorizeLoad,
      }),
      await measure(`Heimdall \`POST /v1/authorize\`, ${configurationLabel.production}`, {
        url: `${production.url}/v1/authorize`,
        ...authorizeLoad,
      }),
      await measure("equivalent authorizer on bare Hono (JSON, RS256 verify, permission check)", {
        url: `${equivalent.url}/v1/authorize`,
        ...authorizeLoad,
      }),
      await measure("floor: bare Hono `POST` (parses the same JSON, answers a small JSON)", {
        url: `${floor.url}/v1/authorize`,
        ...authorizeLoad,
      }),
    ];
    const rssAuthorize = rssMiB();
    const [authorizeHeimdall, authorizeProduction, authorizeEquivalent, authorizeFloor] =
      authorizeRuns as [Measured, Measured, Measured, Measured];

    // 3. Email/password sign-in at equal argon2id cost.
    const hasher = createPasswordHasher(nodeArgon2, DEFAULT_ARGON2_PARAMS);
    const stored = await hasher.hash(PASSWORD);
    const hashTimes: number[] = [];
    const timeHashes = async () => {
      for (let i = 0; i < 15; i++) {
        const t = performance.now();
        if (!(await hasher.verify(stored, PASSWORD)).valid) throw new Error("argon2 verify failed");
        hashTimes.push(performance.now() - t);
      }
    };
    await timeHashes();

    const store = await openBetterAuthStore(db);
    closing.push(() => store.dispose());
    let handler: ((request: Request) => Promise<Response>) | undefined;
    const betterAuthServer = await served((request: Request) => {
      if (!handler) throw new Error("better-auth not ready");
      return handler(request);
    });
    const betterAuthOptions: BetterAuthOptions = {
      database: store.database,
      secret: "bench-better-auth-secret-0123456789abcdef",
      baseURL: betterAuthServer.url,
      // On by default in production, 3 requests per 10 s on sign-in: off for the comparison, as
      // Heimdall's RATE_LIMIT_ENABLED is.
      rateLimit: { enabled: false },
      telemetry: { enabled: false },
      logger: { disabled: true },
      emailAndPassword: {
        enabled: true,
        // better-auth defaults to scrypt; Heimdall's own argon2id hasher, at Heimdall's params.
        password: {
          hash: (password: string) => hasher.hash(password),
          verify: async ({ hash, password }: { hash: string; password: string }) =>
            (await hasher.verify(hash, password)).valid,
        },
      },
    };
    await store.migrate(betterAuthOptions);
    const auth = betterAuth(betterAuthOptions);
    handler = auth.handler;
    await auth.api.signUpEmail({ body: { email: EMAIL, password: PASSWORD, name: "Jane" } });
    const signInBody = JSON.stringify({ email: EMAIL, password: PASSWORD });
    const check = await fetch(`${betterAuthServer.url}/api/auth/sign-in/email`, {
      method: "POST",
      headers: { ...JSON_HEADERS, origin: betterAuthServer.url },
      body: signInBody,
    });
    if (!check.ok || !check.headers.get("set-cookie")) {
      throw new Error(`better-auth sign-in: ${check.status} ${await check.text()}`);
    }
    // Both servers' sign-in paths compiled before the first round, so no round pays for it.
    for (const [url, body] of [
      [`${heimdall.url}/v1/apps/${APP}/tokens`, passwordGrant],
      [`${betterAuthServer.url}/api/auth/sign-in/email`, signInBody],
    ] as const) {
      const warmUp = await load({
        url,
        method: "POST",
        headers: JSON_HEADERS,
        body,
        connections: SIGN_IN_CONNECTIONS,
        amount: SIGN_IN_WARM_UP,
        seconds: 300,
      });
      if (warmUp.errors > 0 || warmUp.non2xx > 0) {
        throw new Error(
          `sign-in warm-up of ${url}: ${warmUp.errors} errors, ${warmUp.non2xx} non-2xx`,
        );
      }
    }
    const heimdallSessions = async () =>
      (await db.port.session().db.select({ n: count() }).from(sessions))[0]?.n ?? 0;
    const sessionsBefore = {
      heimdall: await heimdallSessions(),
      betterAuth: await store.sessions(),
    };
    // The CPU time of the thread that runs the event loop (the bench process's main thread,
    // Heimdall's) per sign-in: a verification on the loop would put a whole hash there.
    const loopCpuPerSignInMs: number[] = [];
    const signInHeimdallRun = async (round: number) => {
      const run = await measure(
        `Heimdall \`POST /v1/apps/{app}/tokens\` (grant_type=password), round ${round}`,
        {
          url: `${heimdall.url}/v1/apps/${APP}/tokens`,
          method: "POST",
          headers: JSON_HEADERS,
          body: passwordGrant,
          connections: SIGN_IN_CONNECTIONS,
        },
      );
      if (run.loopCpuMs !== undefined) loopCpuPerSignInMs.push(run.loopCpuMs / run.requests);
      return run;
    };
    const signInBetterAuthRun = (round: number) =>
      measure(`better-auth \`POST /api/auth/sign-in/email\`, round ${round}`, {
        url: `${betterAuthServer.url}/api/auth/sign-in/email`,
        method: "POST",
        headers: JSON_HEADERS,
        body: signInBody,
        connections: SIGN_IN_CONNECTIONS,
      });
    // A, B, B, A: the machine's load drifts; each side gets an early and a late turn.
    const signInRuns = [
      await signInHeimdallRun(1),
      await signInBetterAuthRun(1),
      await signInBetterAuthRun(2),
      await signInHeimdallRun(2),
    ];
    await timeHashes();
    const hashMs = percentile(hashTimes, 50);
    const fastestHashMs = Math.min(...hashTimes);
    const signInHeimdall = signInRuns.filter((r) => r.label.startsWith("Heimdall"));
    const signInBetterAuth = signInRuns.filter((r) => r.label.startsWith("better-auth"));
    const requestsOf = (runs: Measured[]) =>
      runs.reduce((total, r) => total + r.requests + r.warmUpRequests, 0);
    const sessionsWritten = {
      heimdall: (await heimdallSessions()) - sessionsBefore.heimdall,
      betterAuth: (await store.sessions()) - sessionsBefore.betterAuth,
    };
    const rssSignIn = rssMiB();

    // 4. The same cheap routes with no limiter and with each limiter variant.
    const limited = {
      RATE_LIMIT_ENABLED: "true",
      RATE_LIMIT_DEFAULT_PER_MINUTE: UNREACHED_LIMIT,
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: UNREACHED_LIMIT,
    };
    const variants: Array<{
      name: string;
      url: string;
      target: boolean;
      stats?: { calls: number; failures: number };
    }> = [{ name: "none (RATE_LIMIT_ENABLED=false)", url: heimdall.url, target: false }];
    const measuredVariants = limiterVariants(redisUrl, closing);
    for (const variant of measuredVariants) {
      const built = await variant.build();
      const counted = counting(built.ports.limiter);
      const app = await served(
        createApp(
          await benchPorts(db.port, {
            env: { ...limited, ...built.env },
            ports: { ...built.ports, limiter: counted.limiter },
          }),
        ).fetch,
      );
      variants.push({
        name: variant.name,
        url: app.url,
        target: variant.target,
        stats: counted.stats,
      });
    }
    if (!measuredVariants.some((variant) => variant.name === NATIVE_REDIS)) {
      notRun("limiter-overhead", "no Redis (BENCH_REDIS_URL / TEST_REDIS_URL unset)", NATIVE_REDIS);
    }
    // The limiters must really be counting: a limited answer carries the headers.
    for (const variant of variants.slice(1)) {
      const res = await fetch(`${variant.url}/v1`, { headers: bearer });
      await res.arrayBuffer();
      if (!res.ok || res.headers.get("x-ratelimit-limit") !== UNREACHED_LIMIT) {
        throw new Error(
          `${variant.name}: ${res.status}, limit ${res.headers.get("x-ratelimit-limit")}`,
        );
      }
    }
    const routes = [
      {
        name: "`GET /v1` with a bearer access token (per-credential budget)",
        authorize: false,
        options: { path: "/v1", headers: bearer },
      },
      {
        name: "`POST /v1/authorize` (per-IP budget)",
        authorize: true,
        options: {
          path: "/v1/authorize",
          method: "POST",
          headers: JSON_HEADERS,
          body: authorizeBody,
        },
      },
    ];
    const limitRows: Array<Array<string | number>> = [];
    const limitRuns: Measured[] = [];
    const collectGarbage = garbageCollector();
    for (const route of routes) {
      const { path, ...options } = route.options;
      const runOf = (variant: (typeof variants)[number]) => ({
        url: `${variant.url}${path}`,
        ...options,
        amount: LIMITER_RUN_REQUESTS,
      });
      for (const variant of variants) {
        await measure(`${route.name}, limiter: ${variant.name}, warm-up`, {
          ...runOf(variant),
          amount: LIMITER_RUN_REQUESTS / 2,
        });
      }
      const rounds = new Map(variants.map((variant) => [variant, [] as CpuMeasured[]]));
      const calls = new Map(variants.map((variant) => [variant, { calls: 0, failures: 0 }]));
      for (let round = 0; round < LIMITER_ROUNDS; round++) {
        // Forward, then backward: no variant always runs first or last in a round.
        for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
          const before = variant.stats ? { ...variant.stats } : undefined;
          const result = await measureCpu(
            `${route.name}, limiter: ${variant.name}, round ${round + 1}`,
            runOf(variant),
            collectGarbage,
          );
          limitRuns.push(result);
          rounds.get(variant)?.push(result);
          const counted = calls.get(variant);
          if (variant.stats && before && counted) {
            counted.calls += variant.stats.calls - before.calls;
            counted.failures += variant.stats.failures - before.failures;
          }
        }
      }
      const baseline = rounds.get(variants[0] as (typeof variants)[number]) ?? [];
      for (const variant of variants) {
        const runs = rounds.get(variant) ?? [];
        // CPU per request against no limiter in the same round, so the machine's load that round
        // is on both sides; the median over rounds.
        const cost = median(
          runs.map((run, i) => run.cpuMicrosPerRequest / (baseline[i]?.cpuMicrosPerRequest ?? 1)),
        );
        const counted = calls.get(variant);
        limitRows.push([
          route.name,
          variant.name,
          fmt(median(runs.map((r) => r.requestsPerSecond))),
          ms(median(runs.map((r) => r.p50))),
          ms(median(runs.map((r) => r.p99))),
          fmt(median(runs.map((r) => r.cpuMicrosPerRequest))),
          variant === variants[0]
            ? "1.00×"
            : route.authorize && variant.target
              ? meet("limiter-overhead", cost, `${variant.name} limiter`)
              : `${fmt(cost, 2)}×`,
          runs.reduce((total, r) => total + r.errors, 0),
          runs.reduce((total, r) => total + r.non2xx, 0),
          variant.stats && counted ? `${fmt(counted.calls)} / ${counted.failures}` : "–",
        ]);
      }
    }
    const rssLimits = rssMiB();

    const rps = (r: Measured) => r.requestsPerSecond;
    const signInRatio =
      mean(signInHeimdall.map((r) => r.requestsPerSecond)) /
      mean(signInBetterAuth.map((r) => r.requestsPerSecond));
    const hashShare = (r: Measured) =>
      `≥ ${fmt(Math.min(1, (r.requestsPerSecond * fastestHashMs) / 1000 / cpus().length) * 100)} %`;
    const memoryOnly = redisUrl
      ? ""
      : " **The Upstash limiter was skipped: BENCH_REDIS_URL/TEST_REDIS_URL is unset.**";
    const onPglite = !db.url
      ? " **BENCH_DATABASE_URL/TEST_DATABASE_URL is unset, so Heimdall ran on PGlite and better-auth on its memory adapter: not the Postgres comparison asked for.**"
      : "";
    const totalSeconds = (performance.now() - started) / 1000;

    return [
      "## Authorization, sign-in and rate limits",
      "",
      `Heimdall on ${db.label}, served on loopback by \`@hono/node-server\` in the bench process; load from a separate autocannon process, ${seconds} s per run after a ${WARM_UP_SECONDS} s warm-up with the same settings, 16 connections unless said otherwise. Runs go one at a time; ratios compare runs of this one scenario. RSS is the bench process's, which holds every server of the scenario (Heimdall instances, the bare app, better-auth). Scenario wall time: ${fmt(totalSeconds)} s.`,
      "",
      "### `GET /v1` against a bare Hono route",
      "",
      `The same request to each: \`GET /v1\` with \`Authorization: Bearer\` and the RS256 access token. Heimdall runs its whole middleware chain (request id, request context, request log, bad-path check, IP ban list, secure headers, CORS, rate limiting, body limit, NUL check), authenticates the bearer token (offline verification against the cached key, revocation lookup in the memory store) and answers its index. The bare route ignores the header and answers the same JSON (${fmt(JSON.stringify(rootBody).length)} bytes, Heimdall's own answer captured once at set-up): HTTP + Hono + JSON on this machine, the ceiling of any route.`,
      "",
      table(
        LOAD_HEADERS,
        rootRuns.map((r) => loadRow(r)),
      ),
      "",
      `Ratio Heimdall / bare: ${meet("get-v1", rps(rootHeimdall) / rps(rootBare))}; in the ${configurationLabel.production}: ${meet("get-v1", rps(rootProduction) / rps(rootBare), configurationLabel.production)}. ${failures(rootRuns)} RSS at the end: ${rssRoot} MiB.`,
      "",
      "### `POST /v1/authorize` against an equivalent authorizer",
      "",
      `The same body (\`{token, permission}\`, a ${fmt(authorizeBody.length)}-byte JSON) to each. Heimdall runs its whole middleware chain (as above), validates the body with zod, verifies the RS256 access token offline against its cached key (\`typ\`, \`iss\`, \`aud\`, expiry, required claims), checks revocation (memory store) and the permission, and answers the decision. The equivalent authorizer is a bare Hono route doing the same with jose: it parses the JSON, verifies the token with \`jwtVerify\` against the app's public key (imported once from its JWKS, as Heimdall caches it) with the same options, checks the permission is among the token's, and answers the same JSON — checked at set-up to be byte for byte Heimdall's answer. Not equivalent: it has no middleware, no body validation schema, no revocation lookup and no permission patterns (Heimdall's \`hasPermission\` matches wildcards). The floor only parses the JSON and answers a small JSON: HTTP + Hono + JSON, no authorizer at all.`,
      "",
      table(
        LOAD_HEADERS,
        authorizeRuns.map((r) => loadRow(r)),
      ),
      "",
      `Ratio Heimdall / equivalent authorizer: ${meet("authorize", rps(authorizeHeimdall) / rps(authorizeEquivalent))}; in the ${configurationLabel.production}: ${meet("authorize", rps(authorizeProduction) / rps(authorizeEquivalent), configurationLabel.production)}. Against the floor: Heimdall ${fmt(rps(authorizeHeimdall) / rps(authorizeFloor), 2)}×, the equivalent authorizer ${fmt(rps(authorizeEquivalent) / rps(authorizeFloor), 2)}× (what the RS256 verification alone costs). ${failures(authorizeRuns)} RSS at the end: ${rssAuthorize} MiB.`,
      "",
      "### Email/password sign-in against better-auth",
      "",
      `The same user signs in over and over with the right password (brute-force lockouts count failures only), ${SIGN_IN_CONNECTIONS} connections, in the order Heimdall, better-auth, better-auth, Heimdall so that each side gets an early and a late turn on this machine whose load drifts; the ratio compares the means. Both hash with argon2id m=${DEFAULT_ARGON2_PARAMS.memoryCost} KiB, t=${DEFAULT_ARGON2_PARAMS.timeCost}, p=${DEFAULT_ARGON2_PARAMS.parallelism} through Heimdall's Node engine (\`@node-rs/argon2\`, on libuv's thread pool, off the event loop): better-auth's \`emailAndPassword.password.hash/verify\` is Heimdall's own hasher, in place of better-auth's default scrypt (which on Node also runs on the thread pool, through \`node:crypto\`), so the hash costs the same and runs the same way. better-auth ${betterAuthVersion} runs on ${store.label}, in this process, served the same way; its rate limiter is off (\`rateLimit.enabled: false\`; it is on in production with 3 sign-ins per 10 s), as Heimdall's is (\`RATE_LIMIT_ENABLED=false\`).`,

      "",
      `The work beside the hash is not the same. better-auth reads the user and its credential account, inserts a session and sets a signed cookie. Heimdall reads the app (cached), then the user with their ban status and roles in one prepared statement, checks the lockout, then in one more prepared statement (no transaction held across round trips) updates the user's \`last_login_at\`, inserts a session, a refresh token and an audit event, and signs an RS256 access token: more writes; the update takes the user's row lock for that one statement, so concurrent sign-ins of *one* user queue behind each other only for its duration. Every request signed in: sessions written during the runs and their warm-ups, Heimdall ${fmt(sessionsWritten.heimdall)} and better-auth ${fmt(sessionsWritten.betterAuth)}, against ${fmt(requestsOf(signInHeimdall))} and ${fmt(requestsOf(signInBetterAuth))} answers autocannon counted (it stops with up to ${SIGN_IN_CONNECTIONS} requests in flight per run, which the servers still complete).`,
      "",
      `One argon2id verification takes **${fmt(hashMs, 1)} ms** here: the median of ${hashTimes.length} in this process, half before and half after the runs; the fastest took ${fmt(fastestHashMs, 1)} ms, the figure least disturbed by the machine's other load. Both servers hash on the thread pool, so the machine's ${cpus().length} cores bound either of them at ~${fmt((cpus().length * 1000) / fastestHashMs)} sign-ins per second at the fastest, whatever the connection count; the last column is each run's share of that bound (req/s × the fastest hash ÷ cores). Near it, the two can differ only by what each does beside the hash, which competes with the hashing threads for the same cores: the ratio's ceiling at equal cost is about 1×: the target asks for parity within the work Heimdall does beside the hash (≥ 0.9×), and for an event loop that a burst of sign-ins does not hold (the 1.5× first asked for assumed a peer hashing on its event loop, which better-auth on Node does not).`,

      "",
      table(
        [...LOAD_HEADERS, "share of the hashing bound"],
        signInRuns.map((r) => loadRow(r, [hashShare(r)])),
      ),
      "",
      `Ratio Heimdall / better-auth (mean req/s of both rounds): ${meet("sign-in", signInRatio)}. ${loopCpuLine(loopCpuPerSignInMs, fastestHashMs)} ${failures(signInRuns)} RSS at the end: ${rssSignIn} MiB.${onPglite}`,
      "",
      "### Rate-limited request overhead",
      "",
      `The same routes on one Heimdall instance per limiter over the same database, in the bench configuration otherwise (logs off): limiting off, ${measuredVariants.map((v) => v.name).join(", ")}. Limits are ${fmt(Number(UNREACHED_LIMIT))}/min for the default and authorize classes, so nothing is refused and every request is counted. The load of this machine drifts (other work shares its ${cpus().length} cores), so req/s of runs taken one after the other differ by more than a limiter costs: the runs go in ${LIMITER_ROUNDS} rounds of ${fmt(LIMITER_RUN_REQUESTS)} requests each (after a warm-up of each), every round runs each instance once, forward and backward in turn, and a full garbage collection precedes each run so that no run pays for the previous one's garbage. "CPU µs/req" is the user + system CPU of the bench process, where every Heimdall instance runs (autocannon, the Upstash shim and Redis are processes of their own and not in it), over the run, per request. "Cost vs no limiter" is that CPU per request against the run without a limiter of the same round, the median over rounds: 1.15× means counting adds 15 %. The other columns are medians over the rounds too. For the Redis limiters the figure is what a Heimdall process spends, as a deployment's Redis runs elsewhere; their latency columns also hold the round trip to Redis. The summary holds the \`/v1/authorize\` cost of the memory limiter and of the native Redis limiter (ioredis over \`REDIS_URL\`; ${measuredVariants.some((v) => v.name === NATIVE_REDIS) ? "measured here" : "**not run**: no Redis was given"}). The Upstash endpoint is the tests' REST shim (\`test/support/upstash-rest.ts\`) in a process of its own over ${redisUrl ? "the local Redis" : "Redis"}: no TLS and no network distance, so a real Upstash adds its round trip (typically milliseconds) to each request's latency, while here the shim and Redis take CPU from the same 2 cores. Only the limiter is Upstash; revocations stay in memory. The last column counts limiter calls during the measured runs and those that failed open or timed out (must be 0).${memoryOnly}`,
      "",
      table(
        [
          "route",
          "limiter",
          "req/s",
          "p50 ms",
          "p99 ms",
          "CPU µs/req",
          "cost vs no limiter",
          "errors",
          "non-2xx",
          "limiter calls / failed",
        ],
        limitRows,
      ),
      "",
      `${failures(limitRuns)} RSS at the end: ${rssLimits} MiB.`,
      "",
    ].join("\n");
  } finally {
    for (const close of closing.reverse()) await close().catch(() => {});
    await db.dispose();
  }
}

export const scenario: Scenario = { name: "auth", run };
