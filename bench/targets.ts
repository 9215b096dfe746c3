/**
 * The hot-path targets `npm run bench` checks, in the order its summary lists them. A scenario
 * records what it measured against a target (`meet`), or why it could not (`notRun`); the
 * summary at the top of bench/results.md, and at the end of stdout, has one line per recorded
 * figure and "not run" for a target nobody measured (a scenario left out by BENCH_ONLY, or one
 * that failed).
 */
import { fmt, table } from "./harness";

interface Bound {
  atLeast?: number;
  atMost?: number;
  unit: string;
  /** Decimals of a measured figure. */
  digits: number;
}

export const targets = {
  "get-v1": {
    path: "`GET /v1` with a bearer token / bare Hono",
    atLeast: 0.5,
    unit: "×",
    digits: 2,
  },
  authorize: {
    path: "`POST /v1/authorize` / an equivalent authorizer on bare Hono",
    atLeast: 0.7,
    unit: "×",
    digits: 2,
  },
  "client-credentials-raw": {
    path: "`client_credentials` / raw jose on bare Hono (same alg)",
    atLeast: 0.7,
    unit: "×",
    digits: 2,
  },
  "client-credentials-oidc-provider": {
    path: "`client_credentials` / oidc-provider",
    atLeast: 0.6,
    unit: "×",
    digits: 2,
  },
  "refresh-signing": {
    path: "refresh rotation (Postgres, durable) / raw jose RS256 signing",
    atLeast: 0.4,
    unit: "×",
    digits: 2,
  },
  "refresh-rate": {
    path: "refresh rotation (Postgres, durable)",
    atLeast: 1000,
    unit: " req/s",
    digits: 0,
  },
  // 1.5× assumed a peer hashing on its event loop; better-auth on Node hashes on libuv's pool as
  // Heimdall does, so at equal cost both are bound by the same cores (ceiling ≈ 1×). What the
  // hashing must not do is run on the event loop: the second bound says it does not.
  "sign-in": {
    path: "password sign-in / better-auth at equal argon2id cost",
    atLeast: 0.9,
    unit: "×",
    digits: 2,
  },
  "sign-in-loop": {
    path: "event-loop thread CPU per password sign-in (a verification on it would cost a whole hash)",
    atMost: 5,
    unit: " ms",
    digits: 2,
  },
  "fanout-ratio": {
    path: "live fan-out to 1,000 sockets, p99 / raw `ws` broadcast",
    atMost: 1.5,
    unit: "×",
    digits: 2,
  },
  "fanout-p99": { path: "live fan-out to 1,000 sockets, p99", atMost: 40, unit: " ms", digits: 2 },
  "day-of-track": {
    path: "a day of one device out of 10,000,000 rows, p95",
    atMost: 20,
    unit: " ms",
    digits: 2,
  },
  "worker-bundle": { path: "Worker bundle, gzip", atMost: 420, unit: " KiB", digits: 1 },
  "worker-cpu-authorize": {
    path: "workerd CPU per request above a Worker that only answers, `POST /v1/authorize`",
    atMost: 1,
    unit: " ms",
    digits: 2,
  },
  "worker-cpu-client-credentials": {
    path: "workerd CPU per request above a Worker that only answers, `client_credentials`",
    atMost: 3,
    unit: " ms",
    digits: 2,
  },
  "worker-cpu-osmand": {
    path: "workerd CPU per request above a Worker that only answers, OsmAnd ingest",
    atMost: 2,
    unit: " ms",
    digits: 2,
  },
  "limiter-overhead": {
    path: "limiter cost per request on `/v1/authorize` / no limiter",
    atMost: 1.15,
    unit: "×",
    digits: 2,
  },
} satisfies Record<string, Bound & { path: string }>;

export type TargetId = keyof typeof targets;

interface Recorded {
  id: TargetId;
  /** Which run the figure comes from: a configuration, a database, an algorithm. */
  label: string;
  measured?: number;
  /** Why there is no figure. */
  notRun?: string;
}

const recorded: Recorded[] = [];

const boundOf = (id: TargetId) => {
  const target: Bound = targets[id];
  return target.atLeast !== undefined
    ? `≥ ${fmt(target.atLeast, Number.isInteger(target.atLeast) ? 0 : 2)}${target.unit}`
    : `≤ ${fmt(target.atMost ?? 0, Number.isInteger(target.atMost) ? 0 : 2)}${target.unit}`;
};

const isMet = (id: TargetId, value: number) => {
  const target: Bound = targets[id];
  return (
    (target.atLeast === undefined || value >= target.atLeast) &&
    (target.atMost === undefined || value <= target.atMost)
  );
};

/** A measured figure in its target's unit and digits: `0.74×`, `871 req/s`. */
export const figure = (id: TargetId, value: number) =>
  `${fmt(value, targets[id].digits)}${targets[id].unit}`;

/** Records `value` against the target and answers `0.74× (target ≥ 0.7×: met)` for the section. */
export function meet(id: TargetId, value: number, label = ""): string {
  recorded.push({ id, label, measured: value });
  return `${figure(id, value)} (target ${boundOf(id)}: ${isMet(id, value) ? "met" : "**not met**"})`;
}

/** Records that the target was not measured, and why. */
export function notRun(id: TargetId, why: string, label = "") {
  recorded.push({ id, label, notRun: why });
}

/** One row per recorded figure, in the targets' order; "not run" for a target with none. */
function rows() {
  const out: string[][] = [];
  for (const id of Object.keys(targets) as TargetId[]) {
    const mine = recorded.filter((r) => r.id === id);
    const path = (label: string) => (label ? `${targets[id].path} — ${label}` : targets[id].path);
    if (mine.length === 0) out.push([path(""), boundOf(id), "–", "not run"]);
    for (const r of mine) {
      if (r.measured === undefined) {
        out.push([path(r.label), boundOf(id), "–", `not run: ${r.notRun}`]);
      } else {
        const met = isMet(id, r.measured) ? "met" : "not met";
        out.push([path(r.label), boundOf(id), figure(id, r.measured), met]);
      }
    }
  }
  return out;
}

/** The summary table for bench/results.md. */
export function summaryTable() {
  return table(
    ["target", "bound", "measured", "met?"],
    rows().map((row) =>
      row.map((cell, i) => (i === 3 && cell === "not met" ? "**not met**" : cell)),
    ),
  );
}

/** The same lines for stdout: `met      0.74× (≥ 0.70×)  path — label`. */
export function summaryLines() {
  return rows().map(([path, bound, measured, met]) => {
    const status = met === "met" ? "met    " : met === "not met" ? "NOT MET" : "not run";
    const detail = met?.startsWith("not run: ") ? ` (${met.slice("not run: ".length)})` : "";
    return `${status}  ${(measured ?? "").padStart(12)}  ${(bound ?? "").padEnd(14)} ${path}${detail}`;
  });
}
