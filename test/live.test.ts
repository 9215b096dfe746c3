import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createLiveHub } from "../src/adapters/node/live";
import { createRedisFanout } from "../src/adapters/node/redis-fanout";
import { systemClock } from "../src/adapters/system-clock";
import type { DatabasePort, Ports } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";
import { announceSkip, services } from "./support/services";

if (!services.redis) announceSkip("live rooms across Node processes", "TEST_REDIS_URL");

/** The live room on Node, over real sockets: what a browser or a service would see. */
let db: DatabasePort;
let base: string;
let close: () => Promise<void>;
let app: ReturnType<typeof createTestApp>["app"];
let a: Tenant;
let b: Tenant;
let device: { id: string; secret: string };

beforeAll(async () => {
  db = await createMemoryDatabase();
  let ports: Ports | undefined;
  const hub = createLiveHub(() => ports as Ports, { revocationCheckMs: 100 });
  const instance = createTestApp({
    db,
    clock: systemClock,
    ports: { realtime: hub },
  });
  ports = instance.ports;
  app = instance.app;
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () =>
      resolve(s as Server),
    );
  });
  hub.attach(server);
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = async () => {
    await hub.close();
    await new Promise((resolve) => server.close(resolve));
  };
  a = await createTenant(app, "alpha");
  b = await createTenant(app, "bravo");
  const created = await send(app, "POST", "/v1/devices", {
    body: { name: "t" },
    headers: bearer(a.admin.accessToken),
  });
  device = (await readJson(created)).data;
});
afterAll(async () => {
  await close();
  await db.close();
});

/** A socket that records what it receives, and waits for a message of a type. */
async function connect(query = "") {
  const socket = new WebSocket(`ws://${base}/v1/ws${query}`);
  const received: Array<{ type: string; [k: string]: unknown }> = [];
  const waiters: Array<() => void> = [];
  socket.on("message", (data) => {
    received.push(JSON.parse(data.toString()));
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<number>((resolve) => socket.on("close", (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  return {
    socket,
    received,
    closed,
    send: (message: unknown) => socket.send(JSON.stringify(message)),
    async next(type: string, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = received.findIndex((m) => m.type === type);
        if (index >= 0) return received.splice(index, 1)[0]!;
        if (Date.now() > deadline)
          throw new Error(`no ${type} within ${timeoutMs} ms: ${JSON.stringify(received)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
    },
  };
}

/** Over the real socket, as a browser would ask. */
async function ticketFor(token: string) {
  const res = await fetch(`http://${base}/v1/ws/ticket`, {
    method: "POST",
    headers: bearer(token),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await readJson(res)).data.ticket as string;
}

let minute = 0;
const postPosition = () =>
  send(app, "POST", "/v1/gps", {
    body: {
      timestamp: `2025-11-22T10:${String(minute++).padStart(2, "0")}:00Z`,
      latitude: 52.52,
      longitude: 13.4,
    },
    headers: bearer(device.secret),
  });

describe("live room on Node", () => {
  it("streams a position posted over REST to an authenticated subscriber, and nothing to others", async () => {
    const subscriber = await connect(`?ticket=${await ticketFor(a.admin.accessToken)}`);
    expect(await subscriber.next("Authenticated")).toMatchObject({
      app: a.app.id,
      subject: a.admin.id,
    });
    subscriber.send({ type: "Subscribe", channel: "gps" });
    await subscriber.next("Subscribed");

    const anonymous = await connect();
    anonymous.send({ type: "Subscribe", channel: "gps" });
    expect(await anonymous.next("Error")).toMatchObject({ code: "unauthenticated" });

    const stranger = await connect(`?ticket=${await ticketFor(b.admin.accessToken)}`);
    await stranger.next("Authenticated");
    stranger.send({ type: "Subscribe", channel: "gps" });
    await stranger.next("Subscribed");

    expect((await postPosition()).status).toBe(201);
    const event = await subscriber.next("Position");
    expect(event).toMatchObject({
      channel: "gps",
      data: { device_id: device.id, latitude: 52.52, longitude: 13.4 },
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(anonymous.received.filter((m) => m.type === "Position")).toEqual([]);
    expect(stranger.received.filter((m) => m.type === "Position")).toEqual([]);

    subscriber.send({ type: "Unsubscribe", channel: "gps" });
    await subscriber.next("Unsubscribed");
    await postPosition();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(subscriber.received.filter((m) => m.type === "Position")).toEqual([]);
    for (const s of [subscriber, anonymous, stranger]) s.socket.close();
  });

  it("answers Ping, authenticates an Auth message with an API key, and checks device channels", async () => {
    const key = (
      await readJson(
        await send(app, "POST", "/v1/apps/alpha/api-keys", {
          body: { name: "live", role: "api-read-only" },
          headers: adminHeaders,
        }),
      )
    ).data.key;
    const socket = await connect();
    socket.send({ type: "Ping" });
    await socket.next("Pong");
    // Auth and Subscribe back to back: handled in order, though Auth is asynchronous.
    const eager = await connect();
    eager.send({ type: "Auth", token: key });
    eager.send({ type: "Subscribe", channel: "gps" });
    await eager.next("Authenticated");
    await eager.next("Subscribed");
    eager.socket.close();
    socket.send({ type: "Auth", token: "pk_wrong" });
    expect(await socket.next("Error")).toMatchObject({ code: "invalid_token" });
    socket.send({ type: "Auth", token: key });
    await socket.next("Authenticated");
    socket.send({ type: "Subscribe", channel: `gps:${device.id}` });
    expect(await socket.next("Subscribed")).toMatchObject({ channel: `gps:${device.id}` });
    const other = (
      await readJson(
        await send(app, "POST", "/v1/devices", {
          body: { name: "b" },
          headers: bearer(b.admin.accessToken),
        }),
      )
    ).data;
    socket.send({ type: "Subscribe", channel: `gps:${other.id}` });
    expect(await socket.next("Error")).toMatchObject({ code: "forbidden" });
    socket.send("not json");
    expect(await socket.next("Error")).toMatchObject({ code: "invalid_message" });
    await postPosition();
    expect(await socket.next("Position")).toMatchObject({ channel: `gps:${device.id}` });
    socket.socket.close();
  });

  it("spends a ticket once, and closes a stream whose token is revoked", async () => {
    const ticket = await ticketFor(a.admin.accessToken);
    const first = await connect(`?ticket=${ticket}`);
    await first.next("Authenticated");
    const again = await connect(`?ticket=${ticket}`);
    expect(await again.next("Error")).toMatchObject({ code: "invalid_token" });
    expect(await again.closed).toBe(4001);

    await expectError(
      await send(app, "POST", "/v1/ws/ticket", { headers: bearer(a.reader.accessToken) }),
      403,
      "forbidden",
    );
    // The admin user is deactivated: their live socket closes.
    await send(app, "DELETE", `/v1/apps/alpha/users/${a.admin.id}`, { headers: adminHeaders });
    expect(await first.closed).toBe(4001);
  });
});

describe.runIf(Boolean(services.redis))("live rooms across Node processes (Redis pub/sub)", () => {
  it("delivers a position posted to one instance to a subscriber of another", async () => {
    const instances = await Promise.all(
      [0, 1].map(async () => {
        let ports: Ports | undefined;
        const hub = createLiveHub(() => ports as Ports);
        const instance = createTestApp({ db, clock: systemClock, ports: { realtime: hub } });
        ports = instance.ports;
        const fanout = await createRedisFanout({
          url: services.redis ?? "",
          logger: instance.ports.logger,
          deliver: ({ appId, event }) => hub.deliverLocally(appId, event),
        });
        hub.fanOutWith(fanout.publish);
        const server = await new Promise<Server>((resolve) => {
          const s = serve({ fetch: instance.app.fetch, port: 0, hostname: "127.0.0.1" }, () =>
            resolve(s as Server),
          );
        });
        hub.attach(server);
        return {
          app: instance.app,
          base: `127.0.0.1:${(server.address() as AddressInfo).port}`,
          async close() {
            await hub.close();
            await fanout.close();
            await new Promise((resolve) => server.close(resolve));
          },
        };
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
      const socket = new WebSocket(`ws://${two.base}/v1/ws?ticket=${ticket}`);
      const received: Array<{ type: string; data?: { device_id?: string } }> = [];
      socket.on("message", (data) => received.push(JSON.parse(data.toString())));
      await new Promise((resolve) => socket.once("open", resolve));
      await until(() => received.some((m) => m.type === "Authenticated"));
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
      for (const instance of instances) await instance.close();
    }
  });
});

async function until(check: () => boolean, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
