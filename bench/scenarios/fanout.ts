/**
 * Fan-out latency from ingest to 1,000 live subscribers on the Node hub, next to a raw `ws`
 * broadcast of the same message to 1,000 sockets, in the same run. The rounds alternate between
 * the two, so both see the same machine and the same heap; each side has one warm-up round first.
 * The subscribers of both run in a process of their own (bench/fanout-subscribers.ts), so the
 * servers' event loop is the servers' alone, as in a deployment.
 */
import { type ChildProcess, fork } from "node:child_process";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import { WebSocketServer } from "ws";
import { createApp } from "../../src/app";
import { createLiveHub } from "../../src/node/live";
import type { Ports } from "../../src/ports";
import { createServices, type Services } from "../../src/services/context";
import type { FromSubscribers, SubscriberSet, ToSubscribers } from "../fanout-subscribers";
import {
  ADMIN_KEY,
  benchPorts,
  fmt,
  openBenchDatabase,
  percentile,
  rssMiB,
  type Scenario,
  table,
} from "../harness";
import { meet } from "../targets";

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
/**
 * The p99 of all deliveries is the slowest 1 % of them: with 20 rounds, one or two slow rounds
 * of a shared machine set it alone; 60 make it a property of the path.
 */
const ROUNDS = 60;

/** The clock the subscribers' process reads too: wall-clock ms at the monotonic clock's resolution. */
const sharedNow = () => performance.timeOrigin + performance.now();

/**
 * bench/fanout-subscribers.ts in a process of its own: `count` sockets to each set, open (and
 * subscribed) when this resolves. `round` resolves with the arrival times of a set's round.
 */
async function startSubscribers(count: number, sets: SubscriberSet[]) {
  const tsx = new URL("../../node_modules/tsx/dist/loader.mjs", import.meta.url).href;
  const child: ChildProcess = fork(
    fileURLToPath(new URL("../fanout-subscribers.ts", import.meta.url)),
    [],
    { execArgv: ["--import", tsx], stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const waiting = new Map<string, (message: FromSubscribers) => void>();
  const keyOf = (message: FromSubscribers) =>
    message.type === "round" ? `round:${message.set}:${message.round}` : message.type;
  child.on("message", (message: FromSubscribers) => {
    const key = keyOf(message);
    waiting.get(key)?.(message);
    waiting.delete(key);
  });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`the subscribers' process exited ${code}`))),
  );
  exited.catch(() => {});
  const next = <T extends FromSubscribers>(key: string) =>
    Promise.race([new Promise<T>((resolve) => waiting.set(key, resolve as never)), exited]);
  const tell = (message: ToSubscribers) => child.send(message);

  const ready = next("ready");
  tell({ type: "open", count, sets });
  await ready;
  return {
    /** Arrival times (shared clock) of `set`'s message of `round` at each of its sockets. */
    round: (set: string, round: number) =>
      next<Extract<FromSubscribers, { type: "round" }>>(`round:${set}:${round}`),
    /**
     * How far the two processes' clocks may disagree: the child's reading against the middle of
     * the round trip that fetched it, the worst of a few, plus half the round trip.
     */
    async clockSkew() {
      let worst = 0;
      for (let i = 0; i < 5; i++) {
        const sent = sharedNow();
        const reply = next<Extract<FromSubscribers, { type: "clock" }>>("clock");
        tell({ type: "clock" });
        const { now } = await reply;
        const back = sharedNow();
        worst = Math.max(worst, Math.abs(now - (sent + back) / 2) + (back - sent) / 2);
      }
      return worst;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        tell({ type: "close" });
      }),
  };
}

/**
 * Sends, then waits until every socket of `set` got the round's message; the latencies in ms
 * from just before the send (on the shared clock) and the message.
 */
async function measure(
  subscribers: Awaited<ReturnType<typeof startSubscribers>>,
  set: string,
  round: number,
  send: () => Promise<void>,
) {
  const arrived = subscribers.round(set, round);
  const started = sharedNow();
  await send();
  const { arrivals, message } = await arrived;
  return { latencies: arrivals.map((at) => at - started), message };
}

export const scenario: Scenario = {
  name: "fanout",
  async run() {
    const bench = await openBenchDatabase("pglite");
    const db = bench.port;
    let runtime: { ports: Ports; services: Services } | undefined;
    const hub = createLiveHub(() => runtime as { ports: Ports; services: Services });
    const ports = await benchPorts(db, { ports: { realtime: hub } });
    runtime = { ports, services: createServices(ports) };
    const app = createApp(ports, { services: runtime.services });
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () =>
        resolve(s as Server),
      );
    });
    hub.attach(server);
    const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const post = async (path: string, body: unknown, token = ADMIN_KEY) => {
      const res = await fetch(`http://${base}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as { data: Record<string, string> };
    };
    await post("/v1/apps", { name: "fanout", display_name: "Fan-out" });
    const key =
      (await post("/v1/apps/fanout/api-keys", { name: "bench", role: "api-read-only" })).data.key ??
      "";
    const device = (await post("/v1/apps/fanout/devices", { name: "tracker" })).data;

    // The raw ceiling: a bare ws server broadcasting, each round, the very text Heimdall sent.
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((resolve) => wss.once("listening", resolve));
    const subscribers = await startSubscribers(SUBSCRIBERS, [
      { name: "heimdall", url: `ws://${base}/v1/ws`, token: key },
      { name: "raw", url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` },
    ]);
    const skew = await subscribers.clockSkew();

    const heimdall: number[] = [];
    const raw: number[] = [];
    // Each round's first arrival: Heimdall's is the ingest before the publish plus one send.
    const firsts = { heimdall: [] as number[], raw: [] as number[] };
    let bytes = 0;
    for (let round = 0; round <= ROUNDS; round++) {
      const ingested = await measure(subscribers, "heimdall", round, async () => {
        await post(
          "/v1/gps",
          {
            timestamp: new Date(Date.UTC(2025, 0, 1, 0, round)).toISOString(),
            latitude: 1,
            longitude: 2,
            attributes: { round },
          },
          device.secret,
        );
      });
      const broadcast = await measure(subscribers, "raw", round, async () => {
        for (const client of wss.clients) client.send(ingested.message);
      });
      if (round === 0) continue;
      heimdall.push(...ingested.latencies);
      raw.push(...broadcast.latencies);
      firsts.heimdall.push(Math.min(...ingested.latencies));
      firsts.raw.push(Math.min(...broadcast.latencies));
      bytes = Buffer.byteLength(ingested.message);
    }
    await subscribers.close();
    await new Promise((resolve) => wss.close(resolve));
    await hub.close();
    server.close();
    await bench.dispose();

    const p50 = percentile(heimdall, 50);
    const p99 = percentile(heimdall, 99);
    const rawP99 = percentile(raw, 99);
    const subscribersLabel = SUBSCRIBERS === 1000 ? "" : `${fmt(SUBSCRIBERS)} sockets`;
    return [
      `## Live fan-out to ${fmt(SUBSCRIBERS)} subscribers`,
      "",
      `${ROUNDS} rounds of each, alternating, after one warm-up round of each. Heimdall: from the start of \`POST /v1/gps\` (device secret, stored in PGlite, then published to the Node hub) to each of ${fmt(SUBSCRIBERS)} authenticated WebSocket subscribers of \`gps\`. Raw: a bare \`ws\` server broadcasting the message Heimdall sent that round (${fmt(bytes)} bytes) to ${fmt(SUBSCRIBERS)} sockets. Both servers are in the bench process; the ${fmt(2 * SUBSCRIBERS)} client sockets are in a process of their own (\`bench/fanout-subscribers.ts\`), as a deployment's subscribers are not on its server, and each socket has only that process's one listener, which notes the time its message arrived. A latency runs from just before the bench starts the round (before it sends \`POST /v1/gps\`; before the raw server's first \`send\`) to that arrival, both read on the clock the two processes share (\`performance.timeOrigin + performance.now()\`; they agree within ${fmt(skew, 2)} ms, checked by round trips at the start). The subscribers' process takes each round's ${fmt(SUBSCRIBERS)} frames one after another on its own event loop, the same way for both sides, so both figures hold that client cost too. The last row is each round's first arrival (p50 and p99 over rounds): for Heimdall the HTTP request, the ingest and its insert before the publish, plus one frame; for raw, one frame.`,
      "",
      table(
        ["path", "p50", "p99", "target"],
        [
          [
            "`POST /v1/gps` → stored → hub → every subscriber",
            `${fmt(p50, 1)} ms`,
            `${fmt(p99, 1)} ms`,
            `p99 ${meet("fanout-p99", p99, subscribersLabel)}`,
          ],
          ["raw `ws` broadcast", `${fmt(percentile(raw, 50), 1)} ms`, `${fmt(rawP99, 1)} ms`, ""],
          ["p99 ratio", "", meet("fanout-ratio", p99 / rawP99, subscribersLabel), ""],
          [
            "first subscriber of a round, Heimdall / raw",
            `${fmt(percentile(firsts.heimdall, 50), 1)} / ${fmt(percentile(firsts.raw, 50), 1)} ms`,
            `${fmt(percentile(firsts.heimdall, 99), 1)} / ${fmt(percentile(firsts.raw, 99), 1)} ms`,
            "",
          ],
        ],
      ),
      "",
      `RSS at the end: ${rssMiB()} MiB.`,
      "",
    ].join("\n");
  },
};
