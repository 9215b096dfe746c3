import { describe, expect, it } from "vitest";
import {
  deliver,
  handleMessage,
  MAX_MESSAGES_PER_SECOND,
  newPeerState,
  type Peer,
  type Principal,
  type RoomHost,
} from "../party/room";

/** The room protocol alone, with a fake peer and host: what both hosts rely on. */
function peer(principal?: Principal) {
  const sent: Array<{ type: string; [k: string]: unknown }> = [];
  const p: Peer = {
    id: "p",
    state: newPeerState(principal),
    send: (m) => void sent.push(m as never),
  };
  return { p, sent };
}

const alice: Principal = { appId: "app_A", subjectId: "usr_1", permissions: ["gps:read"] };
let clock = 0;
const host: RoomHost<Principal> = {
  authenticate: async (token) => (token === "good" ? alice : undefined),
  deviceBelongsTo: async (deviceId, appId) =>
    deviceId === "dev_01ARZ3NDEKTSV4RRFFQ69G5FAV" && appId === "app_A",
  now: () => clock,
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
    deliver([a.p, other.p, quiet.p], "app_A", {
      type: "Position",
      channel: "gps",
      data: { latitude: 1 },
    });
    expect(a.sent).toHaveLength(1);
    expect(other.sent).toEqual([]);
    expect(quiet.sent).toEqual([]);
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
});
