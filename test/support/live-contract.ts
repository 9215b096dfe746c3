import ReconnectingWebSocket from "partysocket/ws";
import { beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { adminHeaders } from "./app";
import { expectError, readJson } from "./http";
import { bearer, createTenant, overHttp, type Requester, send, type Tenant } from "./identity";

/** A running Heimdall with a live room: the Node hub, or the Worker and its Durable Objects. */
export interface LiveTarget {
  /** `http://127.0.0.1:<port>`; the room is at `/v1/ws` on the same port. */
  http: string;
  /** Stops the server (every socket drops, as on a deploy) and starts it on the same port. */
  restart(): Promise<void>;
  /** Whether revocations reach the room; the Worker's room needs the shared Upstash store. */
  sharedRevocations: boolean;
}

type Received = { type: string; [k: string]: unknown };

/** A socket that records what it receives, and waits for a message of a type. */
export async function connect(url: string) {
  // After a Durable Object closes a hibernated socket, wrangler's local proxy leaves the TCP
  // connection open: the close frame (and its code) has arrived, the socket would linger 30 s.
  // (`closeTimeout` is ws 8.19's; @types/ws does not know it yet.)
  const socket = new WebSocket(url, { closeTimeout: 1000 } as WebSocket.ClientOptions);
  const received: Received[] = [];
  socket.on("message", (data) => received.push(JSON.parse(data.toString())));
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
    next: (type: string, timeoutMs?: number) => nextOf(received, type, timeoutMs),
    positions: () => received.filter((m) => m.type === "Position"),
  };
}

/** Takes the first message of `type` from `received`, waiting up to `timeoutMs` for it. */
async function nextOf(received: Received[], type: string, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const index = received.findIndex((m) => m.type === type);
    if (index >= 0) return received.splice(index, 1)[0] as Received;
    if (Date.now() > deadline) {
      throw new Error(`no ${type} within ${timeoutMs} ms: ${JSON.stringify(received)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A Ping answered: what the room had sent this socket before (a position it broadcast) has
 * arrived, as a socket's messages arrive in order.
 */
async function roundTrip(socket: Awaited<ReturnType<typeof connect>>) {
  socket.send({ type: "Ping" });
  await socket.next("Pong");
}

/**
 * What every host of the live room must do, spoken over real sockets as a browser or a service
 * would: run against the Node hub and against the Worker's Durable Object room.
 */
export function liveRoomContract(host: string, target: () => LiveTarget) {
  describe(`live room: ${host}`, () => {
    let api: Requester;
    let ws: string;
    let a: Tenant;
    let b: Tenant;
    let device: { id: string; secret: string };
    let minute = 0;

    beforeAll(async () => {
      api = overHttp(target().http);
      ws = target().http.replace(/^http/, "ws");
      a = await createTenant(api, "alpha");
      b = await createTenant(api, "bravo");
      const created = await send(api, "POST", "/v1/devices", {
        body: { name: "tracker" },
        headers: bearer(a.admin.accessToken),
      });
      expect(created.status).toBe(201);
      device = (await readJson(created)).data;
    });

    const ticketFor = async (token: string) => {
      const res = await send(api, "POST", "/v1/ws/ticket", { headers: bearer(token) });
      expect(res.status, await res.clone().text()).toBe(201);
      return (await readJson(res)).data.ticket as string;
    };
    const withTicket = async (token: string) => `${ws}/v1/ws?ticket=${await ticketFor(token)}`;

    /** Posts a position as the tracker and checks it was stored. */
    const postPosition = async () => {
      const res = await send(api, "POST", "/v1/gps", {
        body: {
          timestamp: new Date(Date.UTC(2025, 10, 22, 10, minute++)).toISOString(),
          latitude: 52.52,
          longitude: 13.4,
        },
        headers: bearer(device.secret),
      });
      expect(res.status, await res.clone().text()).toBe(201);
      return (await readJson(res)).data as { id: string };
    };

    it("streams a position posted over REST to an authenticated subscriber, nothing to others, and stops on Unsubscribe", async () => {
      const subscriber = await connect(await withTicket(a.admin.accessToken));
      expect(await subscriber.next("Authenticated")).toMatchObject({
        app: a.app.id,
        subject: a.admin.id,
      });
      subscriber.send({ type: "Subscribe", channel: "gps" });
      await subscriber.next("Subscribed");
      subscriber.send({ type: "Ping" });
      await subscriber.next("Pong");

      const anonymous = await connect(`${ws}/v1/ws`);
      anonymous.send({ type: "Subscribe", channel: "gps" });
      expect(await anonymous.next("Error")).toMatchObject({ code: "unauthenticated" });

      const stranger = await connect(await withTicket(b.admin.accessToken));
      await stranger.next("Authenticated");
      stranger.send({ type: "Subscribe", channel: "gps" });
      await stranger.next("Subscribed");

      const stored = await postPosition();
      expect(await subscriber.next("Position")).toMatchObject({
        channel: "gps",
        data: { id: stored.id, device_id: device.id, latitude: 52.52, longitude: 13.4 },
      });
      // The position has been broadcast (the subscriber has it): any copy to the others came first.
      await roundTrip(anonymous);
      await roundTrip(stranger);
      expect(anonymous.positions()).toEqual([]);
      expect(stranger.positions()).toEqual([]);

      const witness = await connect(await withTicket(a.admin.accessToken));
      await witness.next("Authenticated");
      witness.send({ type: "Subscribe", channel: "gps" });
      await witness.next("Subscribed");
      subscriber.send({ type: "Unsubscribe", channel: "gps" });
      await subscriber.next("Unsubscribed");
      await postPosition();
      await witness.next("Position");
      await roundTrip(subscriber);
      expect(subscriber.positions()).toEqual([]);
      for (const s of [subscriber, anonymous, stranger, witness]) s.socket.close();
    });

    it("answers Ping, authenticates an Auth message, checks device channels, and answers bad messages with an Error", async () => {
      const key = (
        await readJson(
          await send(api, "POST", `/v1/apps/${a.app.name}/api-keys`, {
            body: { name: "live", role: "api-read-only" },
            headers: adminHeaders,
          }),
        )
      ).data.key as string;
      const socket = await connect(`${ws}/v1/ws`);
      socket.send({ type: "Ping" });
      await socket.next("Pong");
      socket.send({ type: "Auth", token: "pk_wrong" });
      expect(await socket.next("Error")).toMatchObject({ code: "invalid_token" });
      // Auth and Subscribe back to back: handled in order, though Auth is asynchronous.
      socket.send({ type: "Auth", token: key });
      socket.send({ type: "Subscribe", channel: `gps:${device.id}` });
      expect(await socket.next("Authenticated")).toMatchObject({ app: a.app.id });
      expect(await socket.next("Subscribed")).toMatchObject({ channel: `gps:${device.id}` });
      socket.send({ type: "Ping" });
      await socket.next("Pong");

      const other = (
        await readJson(
          await send(api, "POST", "/v1/devices", {
            body: { name: "other" },
            headers: bearer(b.admin.accessToken),
          }),
        )
      ).data;
      socket.send({ type: "Subscribe", channel: `gps:${other.id}` });
      expect(await socket.next("Error")).toMatchObject({ code: "forbidden" });
      socket.send("not json");
      expect(await socket.next("Error")).toMatchObject({ code: "invalid_message" });
      socket.send({ type: "Subscribe", channel: "admin" });
      expect(await socket.next("Error")).toMatchObject({ code: "invalid_channel" });
      socket.send({ type: "Ping", padding: "x".repeat(5000) });
      expect(await socket.next("Error")).toMatchObject({ code: "message_too_large" });

      const stored = await postPosition();
      expect(await socket.next("Position")).toMatchObject({
        channel: `gps:${device.id}`,
        data: { id: stored.id },
      });
      socket.socket.close();
    });

    it("spends a ticket once, and closes a stream whose credential is revoked", async (context) => {
      const ticket = await ticketFor(a.admin.accessToken);
      const first = await connect(`${ws}/v1/ws?ticket=${ticket}`);
      await first.next("Authenticated");
      const again = await connect(`${ws}/v1/ws?ticket=${ticket}`);
      expect(await again.next("Error")).toMatchObject({ code: "invalid_token" });
      expect(await again.closed).toBe(4001);
      await expectError(
        await send(api, "POST", "/v1/ws/ticket", { headers: bearer(a.reader.accessToken) }),
        403,
        "forbidden",
      );
      if (!target().sharedRevocations) {
        first.socket.close();
        context.skip("revocations reach this room only through a shared store");
      }
      const member = (
        await readJson(
          await send(api, "POST", `/v1/apps/${a.app.name}/users`, {
            body: { email: "leaver@alpha.test", password: "correct horse battery", role: "admin" },
            headers: adminHeaders,
          }),
        )
      ).data;
      const token = (
        await readJson(
          await send(api, "POST", `/v1/apps/${a.app.name}/tokens`, {
            body: {
              grant_type: "password",
              email: "leaver@alpha.test",
              password: "correct horse battery",
            },
          }),
        )
      ).access_token as string;
      const leaving = await connect(await withTicket(token));
      await leaving.next("Authenticated");
      // The user is deactivated: their live socket closes, the others' stays open.
      const removed = await send(api, "DELETE", `/v1/apps/${a.app.name}/users/${member.id}`, {
        headers: adminHeaders,
      });
      expect(removed.status).toBeLessThan(300);
      expect(await leaving.closed).toBe(4001);
      expect(leaving.received.find((m) => m.type === "Error")).toMatchObject({
        code: "invalid_token",
      });
      expect(first.socket.readyState).toBe(WebSocket.OPEN);
      first.socket.close();
    });

    it("resumes delivery through partysocket after the server restarts", async () => {
      const received: Received[] = [];
      const opened: number[] = [];
      // A fresh ticket for every attempt; while the server is down the attempt fails and is retried.
      const ticketUrl = async () => {
        const res = await send(api, "POST", "/v1/ws/ticket", {
          headers: bearer(a.admin.accessToken),
        });
        if (res.status !== 201) throw new Error(`ticket: ${res.status}`);
        return `${ws}/v1/ws?ticket=${(await readJson(res)).data.ticket}`;
      };
      const socket = new ReconnectingWebSocket(ticketUrl, [], {
        WebSocket,
        minReconnectionDelay: 100,
        maxReconnectionDelay: 500,
      });
      socket.addEventListener("open", () => {
        opened.push(Date.now());
        socket.send(JSON.stringify({ type: "Subscribe", channel: "gps" }));
      });
      socket.addEventListener("message", (event) => received.push(JSON.parse(String(event.data))));
      try {
        await nextOf(received, "Subscribed");
        const before = await postPosition();
        expect(await nextOf(received, "Position")).toMatchObject({ data: { id: before.id } });

        await target().restart();
        await nextOf(received, "Subscribed", 10_000);
        expect(opened).toHaveLength(2);
        const after = await postPosition();
        expect(await nextOf(received, "Position")).toMatchObject({ data: { id: after.id } });
      } finally {
        socket.close();
      }
    });
  });
}
