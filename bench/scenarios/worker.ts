/**
 * The Worker: its bundle's gzip size as `npm run size` computes it (scripts/size.ts), and the CPU
 * time its workerd process spends per request under `wrangler dev` (wrangler's
 * `unstable_startWorker`, as test/worker.test.ts runs it), with the Neon driver reaching the
 * local Postgres through scripts/neon-proxy.ts, beside the same figure of a Worker that only
 * answers (bench/floor-worker), whose difference the targets judge. BENCH_WORKER_REQUESTS sets
 * the measured requests of each kind (default 500), BENCH_WORKER_LOG_LEVEL the log level (info).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { unstable_startWorker } from "wrangler";
import { createWorkerDatabase, startWorker, type Worker } from "../../test/support/worker";
import { fmt, procCpuMs, type Scenario, table, ticksPerSecond, UNREACHED_LIMIT } from "../harness";
import { meet, notRun } from "../targets";

const root = fileURLToPath(new URL("../..", import.meta.url));
const REQUESTS = Number(process.env.BENCH_WORKER_REQUESTS ?? 500);
/** Production logs by default; another level shows what logging costs. */
const LOG_LEVEL = process.env.BENCH_WORKER_LOG_LEVEL ?? "info";
const WARM_UP = 50;
/** Measured rounds of each kind, Heimdall's and the floor's in turns. */
const ROUNDS = 2;
const PER_ROUND = Math.ceil(REQUESTS / ROUNDS);
/** Requests in flight at once: enough to keep workerd busy, few enough to stay in one isolate. */
const CONCURRENCY = 4;
const ADMIN_KEY = "hk_admin_bench_worker_0123456789abcdef";
const APP = "edge";
const PERMISSION = "projects:read";
const PASSWORD = "correct horse battery staple";

/** Runs a Node script of the repository and answers what it printed. */
function runNode(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
    });
    child.stderr.on("data", (chunk) => {
      err += chunk;
    });
    child.once("error", reject);
    child.once("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${args.join(" ")} exited ${code}: ${err}`)),
    );
  });
}

const bin = (path: string) => join(root, "node_modules", path);

/** The console's build is the Worker's static assets: wrangler needs the folder to exist. */
async function ensureConsoleBuild() {
  if (existsSync(join(root, "console/dist"))) return;
  await runNode([bin("vite/bin/vite.js"), "build", "console", "--logLevel", "warn"]);
}

/** `npm run size` without its console rebuild: wrangler's minified dry-run, then scripts/size.ts. */
async function bundleSize() {
  await ensureConsoleBuild();
  const out = mkdtempSync(join(tmpdir(), "heimdall-bundle-"));
  try {
    await runNode([
      bin("wrangler/bin/wrangler.js"),
      "deploy",
      "--dry-run",
      "--outdir",
      out,
      "--minify",
    ]);
    const printed = await runNode([bin("tsx/dist/cli.mjs"), "scripts/size.ts", out]);
    const match = printed.match(/([\d.]+) KiB raw, ([\d.]+) KiB gzip/);
    if (!match) throw new Error(`scripts/size.ts printed ${printed}`);
    return { raw: Number(match[1]), gzip: Number(match[2]) };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The workerd processes started under this one (miniflare spawns them through no shell). */
function workerdProcesses() {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      names.set(Number(entry), stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")));
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // The process ended while we read.
    }
  }
  const descends = (pid: number): boolean => {
    const parent = parents.get(pid);
    if (parent === undefined || parent <= 1) return false;
    return parent === process.pid || descends(parent);
  };
  return [...names]
    .filter(([pid, name]) => name === "workerd" && descends(pid))
    .map(([pid]) => pid);
}

/** The socket inodes listening on loopback `port`, from /proc/net/tcp{,6}. */
function listeningInodes(port: number) {
  const inodes = new Set<string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1]?.split(":")[1];
      if (local && Number.parseInt(local, 16) === port && fields[3] === "0A") {
        inodes.add(fields[9] ?? "");
      }
    }
  }
  return inodes;
}

const ownsSocket = (pid: number, inodes: Set<string>) =>
  readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return inodes.has(link.slice("socket:[".length, -1));
    } catch {
      return false;
    }
  });

/**
 * wrangler runs two workerd processes per Worker: its proxy worker, listening on the dev server's
 * port and forwarding every request, and the user worker's (behind miniflare's entry and
 * asset-router workers). The user worker's is the one not listening on the dev server's port;
 * `others` are the processes of a Worker started before.
 */
function userWorkerProcess(devPort: number, others: number[] = []) {
  const pids = workerdProcesses().filter((pid) => !others.includes(pid));
  const proxyInodes = listeningInodes(devPort);
  const proxies = pids.filter((pid) => ownsSocket(pid, proxyInodes));
  const users = pids.filter((pid) => !proxies.includes(pid));
  if (users.length !== 1) {
    throw new Error(
      `expected one user-worker workerd process, found ${users.length} of ${pids.length} (proxy: ${proxies.join(", ")})`,
    );
  }
  return { user: users[0] as number, proxy: proxies[0], all: pids };
}

/** `count` requests, CONCURRENCY at a time; every answer must be 2xx. */
async function send(count: number, request: (i: number) => Promise<Response>) {
  let next = 0;
  let failed = "";
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const res = await request(next++);
        const text = await res.text();
        if (!res.ok) failed ||= `${res.status} ${text.slice(0, 300)}`;
      }
    }),
  );
  if (failed) throw new Error(failed);
}

interface Kind {
  name: string;
  id: "worker-cpu-authorize" | "worker-cpu-client-credentials" | "worker-cpu-osmand";
  /** The `i`th request of this kind, to the Worker at `base`. */
  request: (base: string, i: number) => Promise<Response>;
}

/** The CPU time per request of a Worker's processes over `count` requests. */
async function measure(
  processes: { user: number; proxy?: number },
  count: number,
  request: (i: number) => Promise<Response>,
) {
  const before = {
    user: procCpuMs(`/proc/${processes.user}/stat`),
    proxy: processes.proxy ? procCpuMs(`/proc/${processes.proxy}/stat`) : 0,
    wall: performance.now(),
  };
  await send(count, request);
  return {
    userMs: (procCpuMs(`/proc/${processes.user}/stat`) - before.user) / count,
    proxyMs: processes.proxy
      ? (procCpuMs(`/proc/${processes.proxy}/stat`) - before.proxy) / count
      : undefined,
    perSecond: count / ((performance.now() - before.wall) / 1000),
  };
}

/** The Worker of bench/floor-worker, which answers every request 204. */
async function startFloorWorker() {
  const worker = await unstable_startWorker({
    config: "bench/floor-worker/wrangler.toml",
    dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false },
  });
  await worker.ready;
  return worker;
}

/** Heimdall's JSON log lines from workerd reach this process's stdout: kept off the report. */
function quietWorkerLogs() {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString();
    const kept = text
      .split("\n")
      .filter((line) => !line.includes('{"time":"'))
      .join("\n");
    if (kept.trim() === "") return true;
    return (write as (chunk: string, ...rest: unknown[]) => boolean)(kept, ...rest);
  }) as typeof process.stdout.write;
  return () => {
    process.stdout.write = write;
  };
}

async function cpuPerRequest(serverUrl: string) {
  const database = await createWorkerDatabase(serverUrl);
  const restore = quietWorkerLogs();
  let worker: Worker | undefined;
  let floor: Worker | undefined;
  try {
    worker = await startWorker({
      APP_ENV: "production",
      LOG_LEVEL,
      ADMIN_API_KEY: ADMIN_KEY,
      KEY_ENCRYPTION_SECRET: "bench-worker-key-encryption-secret-0123456789",
      RATE_LIMIT_ADMIN_PER_MINUTE: UNREACHED_LIMIT,
      RATE_LIMIT_TOKEN_PER_MINUTE: UNREACHED_LIMIT,
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: UNREACHED_LIMIT,
      RATE_LIMIT_DEFAULT_PER_MINUTE: UNREACHED_LIMIT,
      ...database.settings,
    });
    const base = (await worker.url).toString().replace(/\/$/, "");
    const devPort = Number(new URL(base).port);
    const call = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Authorization: `Bearer ${ADMIN_KEY}`,
          ...headers,
        },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown> & {
        data?: Record<string, string>;
      };
      if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    await call("/v1/apps", { name: APP, display_name: "Edge" });
    await call(`/v1/apps/${APP}/roles`, {
      name: "editor",
      display_name: "Editor",
      permissions: [PERMISSION],
    });
    await call(`/v1/apps/${APP}/users`, {
      email: "ada@edge.dev",
      password: PASSWORD,
      role: "editor",
    });
    const grant = await call(`/v1/apps/${APP}/tokens`, {
      grant_type: "password",
      email: "ada@edge.dev",
      password: PASSWORD,
    });
    const authorizeBody = JSON.stringify({ token: grant.access_token, permission: PERMISSION });
    const credential =
      (await call(`/v1/apps/${APP}/credentials`, { name: "bench", permissions: [PERMISSION] }))
        .data ?? {};
    const basic = `Basic ${Buffer.from(`${credential.client_id}:${credential.client_secret}`).toString("base64")}`;
    const device = (await call(`/v1/apps/${APP}/devices`, { name: "tracker" })).data ?? {};
    const start = Date.parse("2025-01-01T00:00:00Z") / 1000;

    const kinds: Kind[] = [
      {
        name: "`POST /v1/authorize` (RS256 access token, permission check)",
        id: "worker-cpu-authorize",
        request: (base) =>
          fetch(`${base}/v1/authorize`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: authorizeBody,
          }),
      },
      {
        name: "`client_credentials` (`POST /v1/apps/{app}/tokens`, HTTP Basic, RS256)",
        id: "worker-cpu-client-credentials",
        request: (base) =>
          fetch(`${base}/v1/apps/${APP}/tokens`, {
            method: "POST",
            headers: { Authorization: basic, "Content-Type": "application/x-www-form-urlencoded" },
            body: "grant_type=client_credentials",
          }),
      },
      {
        name: "OsmAnd ingest (`GET /v1/gps/osmand?key&lat&lon&timestamp`, one point stored)",
        id: "worker-cpu-osmand",
        // A new timestamp each time: every request stores a point.
        request: (base, i) =>
          fetch(
            `${base}/v1/gps/osmand?key=${device.secret}&speed_unit=mps&lat=${52.5 + i / 1e5}&lon=13.4&timestamp=${start + i}&speed=1.4`,
          ),
      },
    ];
    const heimdall = userWorkerProcess(devPort);
    floor = await startFloorWorker();
    const floorBase = (await floor.url).toString().replace(/\/$/, "");
    const floorProcesses = userWorkerProcess(Number(new URL(floorBase).port), heimdall.all);
    const rows: Array<Array<string>> = [];
    for (const [index, kind] of kinds.entries()) {
      const offset = index * (WARM_UP + REQUESTS) * 10;
      await send(WARM_UP, (i) => kind.request(base, offset + i));
      await send(WARM_UP, (i) => kind.request(floorBase, i));
      // Heimdall and the floor in turns, so both see the machine's other load alike.
      const own = { userMs: 0, proxyMs: 0, perSecond: 0 };
      let floorMs = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const first = offset + WARM_UP + round * PER_ROUND;
        const measured = await measure(heimdall, PER_ROUND, (i) => kind.request(base, first + i));
        own.userMs += measured.userMs / ROUNDS;
        own.proxyMs += (measured.proxyMs ?? 0) / ROUNDS;
        own.perSecond += measured.perSecond / ROUNDS;
        floorMs +=
          (await measure(floorProcesses, PER_ROUND, (i) => kind.request(floorBase, i))).userMs /
          ROUNDS;
      }
      rows.push([
        kind.name,
        `${fmt(own.userMs, 2)} ms`,
        `${fmt(floorMs, 2)} ms`,
        meet(kind.id, own.userMs - floorMs),
        heimdall.proxy ? `${fmt(own.proxyMs, 2)} ms` : "–",
        fmt(own.perSecond),
      ]);
    }
    return { rows, user: heimdall.user, proxy: heimdall.proxy, floor: floorProcesses.user };
  } finally {
    await floor?.dispose();
    await worker?.dispose();
    restore();
    await database.close();
  }
}

export const scenario: Scenario = {
  name: "worker",
  async run() {
    const started = performance.now();
    const size = await bundleSize();
    const sections = [
      "## The Worker: bundle size and CPU per request in workerd",
      "",
      `Bundle: \`wrangler deploy --dry-run --minify\` into a temporary folder, measured by scripts/size.ts (every .js/.mjs/.wasm file gzipped at level 9, as \`npm run size\` does): ${fmt(size.raw, 1)} KiB raw, **${fmt(size.gzip, 1)} KiB gzip** (${meet("worker-bundle", size.gzip)}).`,
      "",
    ];
    const server = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
    if (!server) {
      for (const id of [
        "worker-cpu-authorize",
        "worker-cpu-client-credentials",
        "worker-cpu-osmand",
      ] as const) {
        notRun(id, "BENCH_DATABASE_URL/TEST_DATABASE_URL is unset");
      }
      sections.push(
        "CPU per request in workerd: **not run**: the Worker reaches Postgres only, and BENCH_DATABASE_URL/TEST_DATABASE_URL is unset.",
        "",
      );
      return sections.join("\n");
    }
    const cpu = await cpuPerRequest(server);
    sections.push(
      `CPU per request: the Worker of \`wrangler.toml\` in local workerd (wrangler's \`unstable_startWorker\`, as test/worker.test.ts runs it) with \`APP_ENV=production\`, \`LOG_LEVEL=${LOG_LEVEL}\`${LOG_LEVEL === "info" ? " (its JSON lines go to workerd's stdout, as on Cloudflare to Workers Logs)" : " (**not** production's info, set by BENCH_WORKER_LOG_LEVEL)"} and its own memory rate limiter counting every request (no Upstash is configured; limits no run reaches). Its database is a fresh one on ${new URL(server).host}, reached through the Neon serverless driver as on Cloudflare it reaches Neon: a statement outside a transaction over Neon's SQL-over-HTTP protocol, a transaction over a WebSocket, both served by scripts/neon-proxy.ts (in the bench process). Each kind: ${WARM_UP} warm-up requests, then ${REQUESTS} measured in ${ROUNDS} rounds, ${CONCURRENCY} at a time from the bench process, every one answered 2xx; the figure is the user-worker workerd process's CPU time (utime + stime of /proc/${cpu.user}/stat, ${ticksPerSecond} ticks per second) over the measured requests, divided by their number. That process also runs miniflare's entry and asset-router workers in front of Heimdall, which Cloudflare runs outside the Worker's isolate and does not bill. **The floor** measures them: bench/floor-worker, a Worker that answers 204 without reading the request, run by wrangler as Heimdall is (same compatibility settings, static assets in front), in its own workerd process (${cpu.floor}), sent the same requests in rounds alternating with Heimdall's. The target judges **above the floor**, Heimdall's figure minus the floor's: what Heimdall's own code costs, with the Neon driver's fetches and WebSocket framing. wrangler's local trace collector, dev tooling Cloudflare does not run that stores every span in SQLite in the same process, is off (\`X_LOCAL_OBSERVABILITY=false\`, as in the tests); the figures do not include Postgres, the proxy or wrangler's own proxy worker, whose workerd process (${cpu.proxy ?? "none found"}) is shown beside it. On Cloudflare the CPU time billed is the isolate's alone, so the above-floor figures are the closer estimate of it on this machine, the totals an upper bound.`,
      "",
      table(
        [
          "request",
          "user-worker CPU per request",
          "floor Worker, same requests",
          "above the floor",
          "wrangler proxy CPU per request",
          "req/s",
        ],
        cpu.rows,
      ),
      "",
      `Scenario wall time: ${fmt((performance.now() - started) / 1000)} s.`,
      "",
    );
    return sections.join("\n");
  },
};
