import { describe, expect, it } from "vitest";
import {
  AUTH_TIMEOUT_MS,
  CLOSE_AUTH_TIMEOUT,
  CLOSE_UNAUTHORIZED,
  handleMessage,
  MAX_MESSAGES_PER_SECOND,
  newPeerState,
  type Peer,
  type Principal,
  type RoomHost,
  Subscribers,
  subscribersOf,
  sweep,
} from "../party/room";
import type { LiveEvent } from "../src/ports";

/** The room protocol alone, with a fake peer and host: what both hosts rely on. */
let peers = 0;
function peer(principal?: Principal) {
  const sent: Array<{ type: string; [k: string]: unknown }> = [];
  /** What the room serialised for each message it handed over already serialised. */
  const texts: string[] = [];
  const closed: Array<{ code: number; reason: string }> = [];
  const p: Peer = {
    id: `p${++peers}`,
    origin: "https://heimdall.test",
    state: newPeerState(clock, principal),
    send: (m, serialized) => {
      sent.push(m as never);
      if (serialized !== undefined) texts.push(serialized);
    },
    close: (code, reason) => void closed.push({ code, reason }),
  };
  return { p, sent, texts, closed };
}

const alice: Principal = { appId: "app_A", subjectId: "usr_1", permissions: ["gps:read"] };
let clock = 0;
const revoked = new Set<string>();
const failures: unknown[] = [];
const host: RoomHost<Principal> = {
  authenticate: async (token) => {
    if (token === "broken") throw new Error("database unreachable");
    if (token === "bravo") return { ...alice, appId: "app_B" };
    return token === "good" ? alice : undefined;
  },
  deviceBelongsTo: async (deviceId, appId) =>
    deviceId === "dev_01ARZ3NDEKTSV4RRFFQ69G5FAV" && appId === "app_A",
  revokedAmong: async (principals) => principals.map(({ subjectId }) => revoked.has(subjectId)),
  now: () => clock,
  reportError: (_message, error) => void failures.push(error),
};

describe("live room protocol", () => {
  it("answers Ping with Pong, and bad messages with an Error", async () => {
    const { p, sent } = peer();
    await handleMessage(p, JSON.stringify({ type: "Ping" }), host);
    await handleMessage(p, "not json", host);
    await handleMessage(p, JSON.stringify({ type: "Dance" }), host);
    await handleMessage(p, "x".repeat(5000), host);
    expect(sent.map((m) => m.code ?? m.type)).toEqual([
      "Pong",
      "invalid_message",
      "invalid_message",
      "message_too_large",
    ]);
  });

  it("refuses Subscribe before authentication, then checks the permission and the device's app", async () => {
    const { p, sent } = peer();
    await handleMessage(p, JSON.stringify({ type: "Subscribe", channel: "gps" }), host);
    await handleMessage(p, JSON.stringify({ type: "Auth", token: "good" }), host);
    await handleMessage(
      p,
      JSON.stringify({ type: "Subscribe", channel: "gps:dev_01ARZ3NDEKTSV4RRFFQ69G5FAV" }),
      host,
    );
    await handleMessage(
      p,
      JSON.stringify({ type: "Subscribe", channel: "gps:dev_01ARZ3NDEKTSV4RRFFQ69G5FAX" }),
      host,
    );
    await handleMessage(p, JSON.stringify({ type: "Subscribe", channel: "admin" }), host);
    expect(sent.map((m) => m.code ?? m.type)).toEqual([
      "unauthenticated",
      "Authenticated",
      "Subscribed",
      "forbidden",
      "invalid_channel",
    ]);
    const reader = peer({ ...alice, permissions: ["users:read"] });
    await handleMessage(reader.p, JSON.stringify({ type: "Subscribe", channel: "gps" }), host);
    expect(reader.sent[0]).toMatchObject({ code: "forbidden" });
  });

  it("delivers only to subscribers of the event's app and channel", () => {
    const a = peer(alice);
    a.p.state = { ...a.p.state, channels: ["gps"] };
    const other = peer({ ...alice, appId: "app_B" });
    other.p.state = { ...other.p.state, channels: ["gps"] };
    const quiet = peer(alice);
    subscribersOf([a.p, other.p, quiet.p]).deliver("app_A", [
      { type: "Position", channel: "gps", data: { latitude: 1 } },
      { type: "Position", channel: "gps:dev_01ARZ3NDEKTSV4RRFFQ69G5FAV", data: { latitude: 1 } },
    ]);
    expect(a.sent).toEqual([{ type: "Position", channel: "gps", data: { latitude: 1 } }]);
    expect(other.sent).toEqual([]);
    expect(quiet.sent).toEqual([]);
  });

  it("serialises an event once for all its subscribers, and never when its channel has none", () => {
    let serialised = 0;
    const position = (channel: string, latitude: number): LiveEvent => ({
      type: "Position",
      channel,
      data: {
        toJSON: () => {
          serialised++;
          return { latitude };
        },
      },
    });
    const listeners = [peer(alice), peer(alice), peer(alice)];
    const bravo = peer({ ...alice, appId: "app_B" });
    for (const { p } of [...listeners, bravo]) p.state = { ...p.state, channels: ["gps"] };
    const room = subscribersOf([...listeners, bravo].map(({ p }) => p));

    room.deliver("app_A", [position("gps", 1), position("gps:dev_01ARZ3NDEKTSV4RRFFQ69G5FAV", 2)]);
    expect(serialised).toBe(1);
    for (const { texts } of listeners) {
      expect(texts).toEqual([
        JSON.stringify({ type: "Position", channel: "gps", data: { latitude: 1 } }),
      ]);
    }
    expect(bravo.sent).toEqual([]);

    room.deliver("app_B", [position("gps:dev_01ARZ3NDEKTSV4RRFFQ69G5FAV", 3)]);
    room.deliver("app_C", [position("gps", 4)]);
    expect(serialised).toBe(1);
    expect(bravo.sent).toEqual([]);
  });

  it("keeps its index in line with what each peer subscribes to, as whom, and whether it left", async () => {
    const subscribers = new Subscribers();
    const { p, sent } = peer();
    const say = async (message: unknown) => {
      await handleMessage(p, JSON.stringify(message), host);
      subscribers.update(p);
    };
    const event = (channel: string): LiveEvent => ({ type: "Position", channel, data: {} });
    const positions = () => sent.filter((m) => m.type === "Position").map((m) => m.channel);

    await say({ type: "Auth", token: "good" });
    await say({ type: "Subscribe", channel: "gps" });
    subscribers.deliver("app_A", [event("gps")]);
    expect(positions()).toEqual(["gps"]);

    await say({ type: "Unsubscribe", channel: "gps" });
    subscribers.deliver("app_A", [event("gps")]);
    expect(positions()).toEqual(["gps"]);

    await say({ type: "Subscribe", channel: "gps" });
    subscribers.deliver("app_A", [event("gps")]);
    expect(positions()).toEqual(["gps", "gps"]);
    // Authenticating again, as a member of another app, drops the first app's subscriptions.
    await say({ type: "Auth", token: "bravo" });
    subscribers.deliver("app_A", [event("gps")]);
    expect(positions()).toEqual(["gps", "gps"]);
    await say({ type: "Subscribe", channel: "gps" });
    subscribers.deliver("app_B", [event("gps")]);
    expect(positions()).toEqual(["gps", "gps", "gps"]);

    subscribers.remove(p.id);
    subscribers.deliver("app_B", [event("gps")]);
    expect(positions()).toEqual(["gps", "gps", "gps"]);
  });

  it("limits the messages a socket may send each second", async () => {
    const { p, sent } = peer();
    for (let i = 0; i < MAX_MESSAGES_PER_SECOND + 1; i++)
      await handleMessage(p, JSON.stringify({ type: "Ping" }), host);
    expect(sent.at(-1)).toMatchObject({ code: "rate_limited" });
    clock += 1000;
    await handleMessage(p, JSON.stringify({ type: "Ping" }), host);
    expect(sent.at(-1)).toEqual({ type: "Pong" });
  });

  it("answers a failing host with an Error and reports it, keeping the socket", async () => {
    const { p, sent, closed } = peer();
    failures.length = 0;
    await handleMessage(p, JSON.stringify({ type: "Auth", token: "broken" }), host);
    expect(sent).toEqual([
      { type: "Error", code: "invalid_message", message: "The message could not be handled" },
    ]);
    expect(failures).toHaveLength(1);
    expect(closed).toEqual([]);
  });

  it("sweeps out sockets that never authenticate and those whose credential was revoked", async () => {
    clock = 1_000_000;
    const waiting = peer();
    const mallory = peer({ ...alice, subjectId: "usr_2" });
    const bob = peer({ ...alice, subjectId: "usr_3" });
    const flaky = peer({ ...alice, subjectId: "usr_flaky" });
    const all = [waiting.p, mallory.p, bob.p];
    // flaky's room cannot reach its revocation store.
    const unreachable: RoomHost<Principal> = {
      ...host,
      revokedAmong: async () => {
        throw new Error("redis unreachable");
      },
    };
    revoked.add("usr_2");
    failures.length = 0;
    clock += AUTH_TIMEOUT_MS - 1;
    await sweep(all, host);
    await sweep([flaky.p], unreachable);
    expect(waiting.closed).toEqual([]);
    expect(mallory.closed).toEqual([{ code: CLOSE_UNAUTHORIZED, reason: "revoked" }]);
    expect(mallory.sent).toEqual([
      { type: "Error", code: "invalid_token", message: "The credential was revoked" },
    ]);
    clock += 1;
    await sweep(all, host);
    await sweep([flaky.p], unreachable);
    expect(waiting.closed).toEqual([
      { code: CLOSE_AUTH_TIMEOUT, reason: "authentication timeout" },
    ]);
    expect(waiting.sent[0]).toMatchObject({ code: "authentication_timeout" });
    // A revocation store that cannot answer keeps the socket, and says so.
    expect(bob.closed).toEqual([]);
    expect(flaky.closed).toEqual([]);
    expect(failures).toHaveLength(2);
  });
});
