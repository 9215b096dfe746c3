/**
 * The live fan-out's subscribers, run as a process of their own (as autocannon is for HTTP) so
 * that the server under test does not share its event loop with 2,000 client sockets. Started by
 * bench/scenarios/fanout.ts with an IPC channel; every message is JSON.
 *
 * In:  { type: "open", count, sets: [{ name, url, token? }] } — opens `count` sockets to each set's
 *      URL; with a token, each sends `Auth` and `Subscribe gps` and waits for `Subscribed`.
 *      { type: "clock" } — answers { type: "clock", now } at once (checks the shared clock).
 *      { type: "close" } — closes every socket and exits.
 * Out: { type: "ready" } once every socket of every set is open (and subscribed);
 *      { type: "round", set, round, arrivals, message } once every socket of `set` got the
 *      message of that round (its text has `"round":N}`): `arrivals` are the times each socket's
 *      message was emitted, on the clock both processes share (`performance.timeOrigin +
 *      performance.now()`, milliseconds since the epoch), and `message` is one copy of the text.
 */
import WebSocket from "ws";

export interface SubscriberSet {
  name: string;
  url: string;
  /** An API key: the set's sockets authenticate and subscribe to `gps` with it. */
  token?: string;
}

export type ToSubscribers =
  | { type: "open"; count: number; sets: SubscriberSet[] }
  | { type: "clock" }
  | { type: "close" };

export type FromSubscribers =
  | { type: "ready" }
  | { type: "clock"; now: number }
  | { type: "round"; set: string; round: number; arrivals: number[]; message: string };

/** The clock both processes read: wall-clock milliseconds, at the monotonic clock's resolution. */
const sharedNow = () => performance.timeOrigin + performance.now();

const send = (message: FromSubscribers) => process.send?.(message);
const sockets: WebSocket[] = [];

/** Opens `count` sockets to `url`, 100 at a time, each made ready by `onOpen`. */
async function openSockets(
  url: string,
  count: number,
  onOpen: (socket: WebSocket) => Promise<void>,
) {
  const opened: WebSocket[] = [];
  for (let i = 0; i < count; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, count - i) }, async () => {
        const socket = new WebSocket(url);
        await new Promise((resolve, reject) => {
          socket.once("open", resolve);
          socket.once("error", reject);
        });
        await onOpen(socket);
        opened.push(socket);
      }),
    );
  }
  sockets.push(...opened);
  return opened;
}

const subscribe = (token: string) => (socket: WebSocket) =>
  new Promise<void>((resolve) => {
    const onMessage = (data: WebSocket.RawData) => {
      if (!data.toString().includes('"Subscribed"')) return;
      socket.off("message", onMessage);
      resolve();
    };
    socket.on("message", onMessage);
    socket.send(JSON.stringify({ type: "Auth", token }));
    socket.send(JSON.stringify({ type: "Subscribe", channel: "gps" }));
  });

/** Each socket's one listener: notes when its message of a round arrived, reports full rounds. */
function listen(set: string, members: WebSocket[]) {
  const rounds = new Map<number, number[]>();
  for (const socket of members) {
    socket.on("message", (data: WebSocket.RawData) => {
      const at = sharedNow();
      const text = data.toString();
      const match = /"round":(\d+)}/.exec(text);
      if (!match) return;
      const round = Number(match[1]);
      const arrivals = rounds.get(round) ?? [];
      rounds.set(round, arrivals);
      arrivals.push(at);
      if (arrivals.length < members.length) return;
      rounds.delete(round);
      send({ type: "round", set, round, arrivals, message: text });
    });
  }
}

process.on("message", async (message: ToSubscribers) => {
  if (message.type === "clock") return send({ type: "clock", now: sharedNow() });
  if (message.type === "close") {
    for (const socket of sockets) socket.terminate();
    process.disconnect();
    return;
  }
  for (const set of message.sets) {
    const { token } = set;
    const members = await openSockets(
      set.url,
      message.count,
      token ? subscribe(token) : async () => {},
    );
    listen(set.name, members);
  }
  send({ type: "ready" });
});
