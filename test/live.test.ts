import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { systemClock } from "../src/adapters/system-clock";
import { createLiveHub } from "../src/node/live";
import { createRedisFanout } from "../src/node/redis-fanout";
import type { DatabasePort, LiveEvent, Ports, RevocationStore } from "../src/ports";
import { createMemoryDatabase, createTestApp, TEST_ADMIN_KEY, testEnv } from "./support/app";
import { readJson } from "./support/http";
import { bearer, createTenant, overHttp, send, type Tenant } from "./support/identity";
import { connect, liveRoomContract } from "./support/live-contract";
import { listen } from "./support/server";
import { announceSkip, services } from "./support/services";
import { startUpstashRest, type UpstashRestServer } from "./support/upstash-rest";
import { until } from "./support/wait";
import { createWorkerDatabase, startWorker, type Worker } from "./support/worker";

if (!services.postgres) announceSkip("the live room in workerd", "TEST_DATABASE_URL");
if (!services.redis) announceSkip("live rooms across Node processes", "TEST_REDIS_URL");

/** The Node entry's pieces: the test app with the live hub, on a real socket. */
async function serveNodeHub(
  db: DatabasePort,
  port = 0,
  env: Record<string, string> = {},
  ports: Partial<Ports> = {},
) {
  let instance: ReturnType<typeof createTestApp> | undefined;
  const hub = createLiveHub(() => instance as ReturnType<typeof createTestApp>, { sweepMs: 100 });
  instance = createTestApp({ db, clock: systemClock, env, ports: { ...ports, realtime: hub } });
  const listening = await listen(instance.app, port);
  hub.attach(listening.server);
  return {
    ...listening,
    app: instance.app,
    hub,
    async close() {
      await hub.close();
      await listening.close();
    },
  };
}

describe("on Node", () => {
  let db: DatabasePort;
  let server: Awaited<ReturnType<typeof serveNodeHub>>;
  beforeAll(async () => {
    db = await createMemoryDatabase();
    server = await serveNodeHub(db);
  });
  afterAll(async () => {
    await server.close();
    await db.close();
  });

  liveRoomContract("Node hub", () => ({
    http: server.url,
    sharedRevocations: true,
    async restart() {
      await server.close();
      server = await serveNodeHub(db, server.port);
    },
  }));
});

describe("on Node: fan-out and sweep at scale", () => {
  let db: DatabasePort;
  beforeAll(async () => {
    db = await createMemoryDatabase();
  });
  afterAll(async () => {
    await db.close();
  });

  /** A socket of the tenant's admin, subscribed to `gps`. */
  const subscriber = async (server: Awaited<ReturnType<typeof serveNodeHub>>, tenant: Tenant) => {
    const { ticket } = (
      await readJson(
        await send(server.app, "POST", "/v1/ws/ticket", {
          headers: bearer(tenant.admin.accessToken),
        }),
      )
    ).data;
    const socket = await connect(`${server.url.replace("http", "ws")}/v1/ws?ticket=${ticket}`);
    const texts: string[] = [];
    socket.socket.on("message", (data) => texts.push(data.toString()));
    socket.send({ type: "Subscribe", channel: "gps" });
    await socket.next("Subscribed");
    return { ...socket, texts };
  };

  it("checks the credentials of all its sockets with one store call per sweep, and closes exactly the revoked ones", async () => {
    const store = createMemoryRevocationStore(systemClock);
    const sweeps: number[] = [];
    let oneByOne = 0;
    const counted: RevocationStore = {
      ...store,
      isRevoked: (query) => {
        oneByOne++;
        return store.isRevoked(query);
      },
      revokedAmong: (queries) => {
        sweeps.push(queries.length);
        return store.revokedAmong(queries);
      },
    };
    const server = await serveNodeHub(db, 0, {}, { revocations: counted });
    try {
      await createTenant(server.app, "sweeping");
      const keys = [];
      for (let i = 0; i < 12; i++) {
        const created = await send(server.app, "POST", "/v1/apps/sweeping/api-keys", {
          body: { name: `live-${i}`, role: "api-read-only" },
          headers: { Authorization: `Bearer ${TEST_ADMIN_KEY}` },
        });
        keys.push((await readJson(created)).data as { id: string; key: string });
      }
      const sockets = await Promise.all(
        keys.map(async ({ key }) => {
          const socket = await connect(`${server.url.replace("http", "ws")}/v1/ws`);
          socket.send({ type: "Auth", token: key });
          await socket.next("Authenticated");
          return socket;
        }),
      );
      await until(() => sweeps.includes(12), { message: "a sweep of the 12 sockets" });
      const seen = sweeps.length;
      const looked = oneByOne;
      await until(() => sweeps.length >= seen + 3, { message: "three more sweeps" });
      expect(sweeps.slice(seen, seen + 3)).toEqual([12, 12, 12]);
      expect(oneByOne).toBe(looked);

      const revoked = [2, 5, 9];
      for (const index of revoked) {
        const removed = await send(
          server.app,
          "DELETE",
          `/v1/apps/sweeping/api-keys/${keys[index]?.id}`,
          { headers: { Authorization: `Bearer ${TEST_ADMIN_KEY}` } },
        );
        expect(removed.status).toBeLessThan(300);
      }
      for (const index of revoked) expect(await sockets[index]?.closed).toBe(4001);
      await until(() => sweeps.at(-1) === 9, { message: "a sweep of the 9 sockets left" });
      sockets.forEach((socket, index) => {
        if (revoked.includes(index)) {
          expect(socket.received.find((m) => m.type === "Error")).toMatchObject({
            code: "invalid_token",
          });
        } else {
          expect(socket.socket.readyState).toBe(WebSocket.OPEN);
          expect(socket.received.filter((m) => m.type === "Error")).toEqual([]);
        }
      });
      for (const socket of sockets) socket.socket.close();
    } finally {
      await server.close();
    }
  });

  it("serialises an event once for its sockets and the other processes, and not at all when no one listens", async () => {
    const server = await serveNodeHub(db);
    try {
      const echo = await createTenant(server.app, "echo");
      const foxtrot = await createTenant(server.app, "foxtrot");
      const listeners = [await subscriber(server, echo), await subscriber(server, echo)];
      const stranger = await subscriber(server, foxtrot);
      let serialised = 0;
      const position = (channel: string, round: number): LiveEvent => ({
        type: "Position",
        channel,
        data: {
          toJSON: () => {
            serialised++;
            return { round };
          },
        },
      });
      const nobody = "gps:dev_01ARZ3NDEKTSV4RRFFQ69G5FAV";

      await server.hub.publish(echo.app.id, [position(nobody, 1), position("gps", 2)]);
      const text = JSON.stringify({ type: "Position", channel: "gps", data: { round: 2 } });
      for (const listener of listeners) await until(() => listener.texts.includes(text));
      expect(serialised).toBe(1);
      stranger.send({ type: "Ping" });
      await stranger.next("Pong");
      expect(stranger.positions()).toEqual([]);

      // With other processes to tell, every event is written once, for them and for the sockets.
      const toOthers: Array<{ appId: string; json: readonly string[] }> = [];
      server.hub.fanOutWith(async ({ appId, json }) => void toOthers.push({ appId, json }));
      await server.hub.publish(echo.app.id, [position(nobody, 3), position("gps", 4)]);
      const fourth = JSON.stringify({ type: "Position", channel: "gps", data: { round: 4 } });
      for (const listener of listeners) await until(() => listener.texts.includes(fourth));
      expect(serialised).toBe(3);
      expect(toOthers).toEqual([
        {
          appId: echo.app.id,
          json: [JSON.stringify({ type: "Position", channel: nobody, data: { round: 3 } }), fourth],
        },
      ]);
      stranger.send({ type: "Ping" });
      await stranger.next("Pong");
      expect(stranger.positions()).toEqual([]);
      for (const socket of [...listeners, stranger]) socket.socket.close();
    } finally {
      await server.close();
    }
  });

  it("frames an event of any length whole for each subscriber, in order with its other messages", async () => {
    const server = await serveNodeHub(db);
    try {
      const hotel = await createTenant(server.app, "hotel");
      const listeners = [await subscriber(server, hotel), await subscriber(server, hotel)];
      // Lengths in each of a frame header's three forms: 7 bits, 16 bits after 126, 64 after 127.
      const events = [10, 1_000, 70_000, 5].map(
        (length): LiveEvent => ({
          type: "Position",
          channel: "gps",
          data: { note: "é".repeat(length / 5) + "x".repeat(length - length / 5) },
        }),
      );
      await server.hub.publish(hotel.app.id, events);
      const texts = events.map((event) => JSON.stringify(event));
      const forms = texts
        .map((text) => Buffer.byteLength(text))
        .map((n) => (n < 126 ? 7 : n < 65_536 ? 16 : 64));
      expect(forms).toEqual([7, 16, 64, 7]);
      for (const listener of listeners) {
        const positions = () =>
          listener.texts.filter((text) => text.startsWith('{"type":"Position"'));
        await until(() => positions().length === texts.length);
        expect(positions()).toEqual(texts);
        listener.send({ type: "Ping" });
        await listener.next("Pong");
      }
      for (const socket of listeners) socket.socket.close();
    } finally {
      await server.close();
    }
  });

  it("publishes an ingest's events once its answer has been written", async () => {
    const order: string[] = [];
    const instance = createTestApp({
      db,
      ports: {
        realtime: {
          publish: async () => void order.push("published"),
          subscribe: () => {
            throw new Error("not subscribed in this test");
          },
        },
      },
    });
    const listening = await listen(instance.app);
    listening.server.on("request", (request, response) => {
      if (request.url === "/v1/gps") response.once("finish", () => order.push("answered"));
    });
    try {
      const tenant = await createTenant(instance.app, "golf");
      const device = (
        await readJson(
          await send(instance.app, "POST", "/v1/devices", {
            body: { name: "tracker" },
            headers: bearer(tenant.admin.accessToken),
          }),
        )
      ).data;
      const posted = await send(overHttp(listening.url), "POST", "/v1/gps", {
        body: { timestamp: "2025-11-22T12:00:00Z", latitude: 1, longitude: 2 },
        headers: bearer(device.secret),
      });
      expect(posted.status).toBe(201);
      await until(() => order.length === 2);
      expect(order).toEqual(["answered", "published"]);
    } finally {
      await listening.close();
    }
  });
});

type Upgrade = { socket: WebSocket } | { status: number; body: string };

/** An upgrade from `ip` (the test app's client address header): the socket, or the refusal. */
function upgrade(url: string, ip: string) {
  const socket = new WebSocket(url, { headers: { "X-Test-Client-Ip": ip } });
  return new Promise<Upgrade>((resolve, reject) => {
    socket.once("open", () => resolve({ socket }));
    socket.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (chunk) => {
        body += chunk;
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    socket.once("error", reject);
  });
}

describe("on Node: bans and caps per client address", () => {
  let db: DatabasePort;
  let server: Awaited<ReturnType<typeof serveNodeHub>>;
  beforeAll(async () => {
    db = await createMemoryDatabase();
    server = await serveNodeHub(db, 0, { LIVE_MAX_SOCKETS_PER_IP: "3" });
  });
  afterAll(async () => {
    await server.close();
    await db.close();
  });
  const ws = () => `${server.url.replace("http", "ws")}/v1/ws`;

  it("caps the sockets of one address, and frees a slot when one closes", async () => {
    const opened = await Promise.all(
      Array.from({ length: 8 }, () => upgrade(ws(), "198.51.100.10")),
    );
    const sockets = opened.flatMap((answer) => ("socket" in answer ? [answer.socket] : []));
    expect(sockets).toHaveLength(3);
    for (const answer of opened) {
      if ("status" in answer) {
        expect(answer.status).toBe(429);
        expect(JSON.parse(answer.body).error.code).toBe("rate_limited");
      }
    }
    // Another address has its own sockets.
    const other = await upgrade(ws(), "198.51.100.11");
    expect("socket" in other).toBe(true);
    const closed = new Promise((resolve) => sockets[0]?.once("close", resolve));
    sockets[0]?.close();
    await closed;
    await until(() => server.hub.connections === 3);
    const again = await upgrade(ws(), "198.51.100.10");
    expect("socket" in again).toBe(true);
    for (const answer of [other, again]) if ("socket" in answer) answer.socket.terminate();
    for (const socket of sockets) socket.terminate();
  });

  it("refuses upgrades from a banned address and closes its open sockets", async () => {
    const tenant = await createTenant(server.app, "banned-live");
    const ticket = async () =>
      (
        await readJson(
          await send(server.app, "POST", "/v1/ws/ticket", {
            headers: bearer(tenant.admin.accessToken),
          }),
        )
      ).data.ticket as string;
    const ip = "203.0.113.66";
    const streaming = new WebSocket(`${ws()}?ticket=${await ticket()}`, {
      headers: { "X-Test-Client-Ip": ip },
    });
    const received: Array<{ type: string; code?: string }> = [];
    streaming.on("message", (data) => received.push(JSON.parse(data.toString())));
    const closedWith = new Promise<number>((resolve) =>
      streaming.on("close", (code) => resolve(code)),
    );
    await until(() => received.some((m) => m.type === "Authenticated"));
    const anonymous = await upgrade(ws(), ip);
    expect("socket" in anonymous).toBe(true);

    const ban = await send(server.app, "POST", "/v1/admin/bans", {
      body: { ip, reason: "scraping positions" },
      headers: { Authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(ban.status).toBe(201);
    // The next sweep (100 ms here) closes both, the streaming one told why.
    expect(await closedWith).toBe(4003);
    expect(received.at(-1)).toMatchObject({ type: "Error", code: "forbidden" });
    if ("socket" in anonymous) {
      await until(() => anonymous.socket.readyState === WebSocket.CLOSED);
    }
    const refused = await upgrade(`${ws()}?ticket=${await ticket()}`, ip);
    expect(refused).toMatchObject({ status: 403 });
    expect(JSON.parse("body" in refused ? refused.body : "{}").error.code).toBe("forbidden");
    // Other addresses are not affected.
    const fine = await upgrade(ws(), "203.0.113.67");
    expect("socket" in fine).toBe(true);
    if ("socket" in fine) fine.socket.terminate();
  });
});

describe("on Node: the default cap", () => {
  it("accepts 20 sockets of one address, of 300 opened at once", async () => {
    const db = await createMemoryDatabase();
    const server = await serveNodeHub(db);
    try {
      const url = `${server.url.replace("http", "ws")}/v1/ws`;
      const answers = await Promise.all(
        Array.from({ length: 300 }, () => upgrade(url, "198.51.100.99")),
      );
      const open = answers.flatMap((answer) => ("socket" in answer ? [answer.socket] : []));
      expect(open).toHaveLength(20);
      expect(answers.filter((answer) => "status" in answer && answer.status === 429)).toHaveLength(
        280,
      );
      for (const socket of open) socket.terminate();
    } finally {
      await server.close();
      await db.close();
    }
  });
});

describe.runIf(Boolean(services.postgres))("in workerd", () => {
  let worker: Worker;
  let url: string;
  let upstash: UpstashRestServer | undefined;
  const teardown: Array<() => Promise<void>> = [];
  let settings: Record<string, string>;

  beforeAll(async () => {
    const database = await createWorkerDatabase(services.postgres ?? "");
    teardown.push(database.close);
    if (services.redis) {
      upstash = await startUpstashRest({ redisUrl: services.redis });
      teardown.push(upstash.close);
    }
    settings = {
      ...database.settings,
      APP_ENV: "test",
      ADMIN_API_KEY: TEST_ADMIN_KEY,
      KEY_ENCRYPTION_SECRET: testEnv.KEY_ENCRYPTION_SECRET,
      PASSWORD_HASH_MEMORY_KIB: testEnv.PASSWORD_HASH_MEMORY_KIB,
      PASSWORD_HASH_ITERATIONS: testEnv.PASSWORD_HASH_ITERATIONS,
      RATE_LIMIT_ENABLED: "false",
      LIVE_SWEEP_SECONDS: "1",
      ...(upstash
        ? { UPSTASH_REDIS_REST_URL: upstash.url, UPSTASH_REDIS_REST_TOKEN: upstash.token }
        : {}),
    };
    worker = await startWorker(settings);
    url = (await worker.url).origin;
  });
  afterAll(async () => {
    await worker?.dispose();
    for (const dispose of teardown.reverse()) await dispose();
  });

  liveRoomContract("Durable Object room", () => ({
    http: url,
    sharedRevocations: Boolean(upstash),
    async restart() {
      await worker.dispose();
      worker = await startWorker(settings, Number(new URL(url).port));
    },
  }));
  it("refuses upgrades from a banned address, and the room closes its open sockets", async () => {
    const api = overHttp(url);
    const tenant = await createTenant(api, "banned-do");
    const ticket = async () =>
      (
        await readJson(
          await send(api, "POST", "/v1/ws/ticket", { headers: bearer(tenant.admin.accessToken) }),
        )
      ).data.ticket as string;
    const ip = "203.0.113.5";
    const wsUrl = `${url.replace("http", "ws")}/v1/ws`;
    const streaming = new WebSocket(`${wsUrl}?ticket=${await ticket()}`, {
      headers: { "CF-Connecting-IP": ip },
    });
    const received: Array<{ type: string; code?: string }> = [];
    streaming.on("message", (data) => received.push(JSON.parse(data.toString())));
    const closedWith = new Promise<number>((resolve) =>
      streaming.on("close", (code) => resolve(code)),
    );
    await until(() => received.some((m) => m.type === "Authenticated"), { timeoutMs: 10_000 });

    const ban = await send(api, "POST", "/v1/admin/bans", {
      body: { ip, reason: "scraping positions" },
      headers: { Authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    expect(ban.status).toBe(201);
    const refused = new WebSocket(`${wsUrl}?ticket=${await ticket()}`, {
      headers: { "CF-Connecting-IP": ip },
    });
    const status = await new Promise<number>((resolve) => {
      refused.once("unexpected-response", (_request, response) =>
        resolve(response.statusCode ?? 0),
      );
      refused.once("open", () => resolve(101));
    });
    expect(status).toBe(403);
    // The room's own ban list is refreshed within 30 s; it sweeps every second here.
    expect(await closedWith).toBe(4003);
    expect(received.at(-1)).toMatchObject({ type: "Error", code: "forbidden" });
  }, 60_000);

  it("caps an address's sockets in an app's room at LIVE_MAX_SOCKETS_PER_IP (20)", async () => {
    const api = overHttp(url);
    const tenant = await createTenant(api, "capped-do");
    const wsUrl = `${url.replace("http", "ws")}/v1/ws`;
    const sockets = await Promise.all(
      Array.from({ length: 21 }, async () => {
        const { ticket } = (
          await readJson(
            await send(api, "POST", "/v1/ws/ticket", { headers: bearer(tenant.admin.accessToken) }),
          )
        ).data;
        const socket = new WebSocket(`${wsUrl}?ticket=${ticket}`, {
          headers: { "CF-Connecting-IP": "203.0.113.21" },
        });
        const received: Array<{ type: string; code?: string }> = [];
        socket.on("message", (data) => received.push(JSON.parse(data.toString())));
        const closed = new Promise<number>((resolve) =>
          socket.on("close", (code) => resolve(code)),
        );
        return { socket, received, closed };
      }),
    );
    const settled = () =>
      sockets.every(({ received }) => received.some((m) => m.type !== undefined));
    await until(settled, { timeoutMs: 15_000 });
    const refused = sockets.filter(({ received }) =>
      received.some((m) => m.type === "Error" && m.code === "rate_limited"),
    );
    expect(refused).toHaveLength(1);
    expect(await refused[0]?.closed).toBe(4029);
    expect(sockets.filter(({ received }) => received[0]?.type === "Authenticated")).toHaveLength(
      20,
    );
    for (const { socket } of sockets) socket.terminate();
  }, 60_000);

  it("serves GraphQL, and a subscription fed by the Durable Object room", async () => {
    const api = overHttp(url);
    const tenant = await createTenant(api, "delta");
    const me = await send(api, "POST", "/v1/gql", {
      body: { query: "{ me { userId isSuperAdmin } }" },
      headers: bearer(tenant.admin.accessToken),
    });
    expect(await readJson(me)).toEqual({
      data: { me: { userId: tenant.admin.id, isSuperAdmin: true } },
    });
    const device = (
      await readJson(
        await send(api, "POST", "/v1/devices", {
          body: { name: "edge" },
          headers: bearer(tenant.admin.accessToken),
        }),
      )
    ).data;
    const abort = new AbortController();
    try {
      const stream = await fetch(`${url}/v1/gql`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          ...bearer(tenant.admin.accessToken),
        },
        body: JSON.stringify({ query: "subscription { positions { id deviceId } }" }),
        signal: abort.signal,
      });
      expect(stream.status).toBe(200);
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
      const next = readUntil(reader, "event: next");
      await new Promise((resolve) => setTimeout(resolve, 300));
      const posted = await send(api, "POST", "/v1/gps", {
        body: { timestamp: "2025-11-22T12:00:00Z", latitude: 1, longitude: 2 },
        headers: bearer(device.secret),
      });
      expect(posted.status).toBe(201);
      const stored = (await readJson(posted)).data;
      const line = (await next).split("\n").find((l) => l.startsWith("data: "));
      expect(JSON.parse(line?.slice(6) ?? "{}")).toEqual({
        data: { positions: { id: stored.id, deviceId: device.id } },
      });
    } finally {
      abort.abort();
    }
  });
});

/** Reads a text stream until `marker` has arrived, and the line after it. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, marker: string) {
  const decoder = new TextDecoder();
  let text = "";
  while (!/event: next\ndata: .*\n/.test(text) || !text.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text.slice(text.indexOf(marker));
}

describe.runIf(Boolean(services.redis))("across Node processes (Redis pub/sub)", () => {
  it("delivers a position posted to one instance to a subscriber of another", async () => {
    const db = await createMemoryDatabase();
    const instances = await Promise.all(
      [0, 1].map(async () => {
        const server = await serveNodeHub(db);
        const fanout = await createRedisFanout({
          url: services.redis ?? "",
          logger: createTestApp({ db }).ports.logger,
          deliver: server.hub.deliverLocally,
        });
        server.hub.fanOutWith(fanout.publish);
        return { ...server, fanout };
      }),
    );
    const [one, two] = instances as [(typeof instances)[0], (typeof instances)[0]];
    try {
      const tenant = await createTenant(one.app, "charlie");
      const tracker = (
        await readJson(
          await send(one.app, "POST", "/v1/devices", {
            body: { name: "x" },
            headers: bearer(tenant.admin.accessToken),
          }),
        )
      ).data;
      const ticket = (
        await readJson(
          await send(two.app, "POST", "/v1/ws/ticket", {
            headers: bearer(tenant.admin.accessToken),
          }),
        )
      ).data.ticket;
      const socket = new WebSocket(`${two.url.replace("http", "ws")}/v1/ws?ticket=${ticket}`);
      const received: Array<{ type: string; data?: { device_id?: string } }> = [];
      socket.on("message", (data) => received.push(JSON.parse(data.toString())));
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ type: "Subscribe", channel: "gps" }));
      await until(() => received.some((m) => m.type === "Subscribed"));
      const posted = await send(one.app, "POST", "/v1/gps", {
        body: { timestamp: "2025-11-22T12:00:00Z", latitude: 1, longitude: 2 },
        headers: bearer(tracker.secret),
      });
      expect(posted.status).toBe(201);
      await until(() => received.some((m) => m.type === "Position"));
      expect(received.find((m) => m.type === "Position")?.data?.device_id).toBe(tracker.id);
      socket.close();
    } finally {
      for (const instance of instances) {
        await instance.close();
        await instance.fanout.close();
      }
      await db.close();
    }
  });
});
