/**
 * Fan-out latency from ingest to 1,000 live subscribers on the Node hub, next to a raw `ws`
 * broadcast of the same message to 1,000 sockets, in the same run. Appends to bench/results.md.
 */
import { appendFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import WebSocket, { WebSocketServer } from "ws";
import { createConsoleLogger } from "../src/adapters/console-logger";
import { createIdentityPorts } from "../src/adapters/identity";
import { createMemoryLimiter } from "../src/adapters/memory/limiter";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { createLiveHub } from "../src/adapters/node/live";
import { createPgliteDatabase } from "../src/adapters/pglite/database";
import { systemClock } from "../src/adapters/system-clock";
import { createApp } from "../src/app";
import { parseConfig } from "../src/config";
import { sha256Hex } from "../src/lib/crypto";
import type { Ports } from "../src/ports";
import { noErrorReporter } from "../src/ports/error-reporter";
import { noGeoIp } from "../src/ports/geoip";

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const ROUNDS = 20;
const adminKey = "hk_admin_bench_0123456789abcdefghijkl";

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
};

/** Opens `count` sockets, in batches so the 2-core machine keeps up. */
async function openSockets(
  url: string,
  count: number,
  onOpen: (socket: WebSocket) => Promise<void>,
) {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < count; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, async () => {
        const socket = new WebSocket(url);
        await new Promise((resolve, reject) => {
          socket.once("open", resolve);
          socket.once("error", reject);
        });
        await onOpen(socket);
        sockets.push(socket);
      }),
    );
  }
  return sockets;
}

/** Sends, then waits until every socket got the round's message; latencies in ms. */
async function measure(sockets: WebSocket[], round: number, send: () => Promise<void>) {
  const latencies: number[] = [];
  const started = performance.now();
  const arrivals = Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          const onMessage = (data: WebSocket.RawData) => {
            const text = data.toString();
            if (!text.includes(`"round":${round}}`) && !text.includes(`"round-${round}"`)) return;
            latencies.push(performance.now() - started);
            socket.off("message", onMessage);
            resolve();
          };
          socket.on("message", onMessage);
        }),
    ),
  );
  await send();
  await arrivals;
  return latencies;
}

async function main() {
  const db = await createPgliteDatabase({
    dataDir: "memory://",
    migrationsFolder: fileURLToPath(new URL("../drizzle", import.meta.url)),
  });
  const config = parseConfig({
    APP_ENV: "production",
    LOG_LEVEL: "silent",
    ADMIN_API_KEY: adminKey,
    KEY_ENCRYPTION_SECRET: "bench-key-encryption-secret-0123456789abcdef",
    RATE_LIMIT_ENABLED: "false",
  });
  const logger = createConsoleLogger({ level: "silent" });
  const revocations = createMemoryRevocationStore(systemClock);
  let ports: Ports | undefined;
  const hub = createLiveHub(() => ports as Ports);
  ports = {
    config,
    db,
    clock: systemClock,
    logger,
    revocations,
    limiter: createMemoryLimiter(systemClock),
    realtime: hub,
    ...createIdentityPorts(
      config,
      {
        adminKeyHash: await sha256Hex(adminKey),
        keyEncryptionSecret: config.KEY_ENCRYPTION_SECRET ?? "",
      },
      systemClock,
      revocations,
      logger,
    ),
    clientIp: () => undefined,
    geoip: noGeoIp,
    errors: noErrorReporter,
  };
  const app = createApp(ports);
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () =>
      resolve(s as Server),
    );
  });
  hub.attach(server);
  const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const post = async (path: string, body: unknown, token = adminKey) => {
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

  const subscribers = await openSockets(`ws://${base}/v1/ws`, SUBSCRIBERS, async (socket) => {
    const ready = new Promise<void>((resolve) => {
      socket.on("message", (data) => {
        if (data.toString().includes('"Subscribed"')) resolve();
      });
    });
    socket.send(JSON.stringify({ type: "Auth", token: key }));
    socket.send(JSON.stringify({ type: "Subscribe", channel: "gps" }));
    await ready;
  });
  const heimdall: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    heimdall.push(
      ...(await measure(subscribers, round, async () => {
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
      })),
    );
  }
  for (const socket of subscribers) socket.terminate();
  await hub.close();
  server.close();
  await db.close();

  // The raw ceiling: a bare ws server broadcasting the same size of message.
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await new Promise((resolve) => wss.once("listening", resolve));
  const rawSockets = await openSockets(
    `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    SUBSCRIBERS,
    async () => {},
  );
  const raw: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raw.push(
      ...(await measure(rawSockets, round, async () => {
        const message = JSON.stringify({
          type: "Position",
          channel: "gps",
          data: { id: `round-${round}`, latitude: 1 },
        });
        for (const client of wss.clients) client.send(message);
      })),
    );
  }
  for (const socket of rawSockets) socket.terminate();
  await new Promise((resolve) => wss.close(resolve));

  const lines = [
    "",
    `## Live fan-out to ${SUBSCRIBERS.toLocaleString("en")} subscribers (${ROUNDS} rounds, clients in the bench process)`,
    "",
    "| path | p50 | p99 |",
    "|---|---|---|",
    `| \`POST /v1/gps\` → stored → Node hub → every subscriber | ${percentile(heimdall, 50).toFixed(1)} ms | ${percentile(heimdall, 99).toFixed(1)} ms |`,
    `| raw \`ws\` broadcast of one message | ${percentile(raw, 50).toFixed(1)} ms | ${percentile(raw, 99).toFixed(1)} ms |`,
    "",
  ];
  appendFileSync(new URL("./results.md", import.meta.url), lines.join("\n"));
  console.log(lines.join("\n"));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
