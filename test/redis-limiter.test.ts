import { createHash } from "node:crypto";
import { createServer, Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { LimiterCommands } from "../src/adapters/redis/commands";
import { createRedisLimiter } from "../src/adapters/redis/limiter";
import { slidingWindowScript } from "../src/adapters/redis/sliding-window";
import { nativeRedisClients } from "./support/native-redis";

/**
 * The native Redis limiter sends `@upstash/ratelimit`'s sliding window itself; the Upstash one goes
 * through the library. Both must count one budget: same script, keys, arguments and reading of
 * the answer. test/cache-ports.test.ts runs both against real Redis; this file pins what each
 * sends, and the native client's handling of a Redis that does not know the script.
 */

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

/** The script's answers, in order, to whichever client asks: [requests left, limit]. */
function scripted(replies: Array<[number, number]>) {
  const sent: Array<{ keys: string[]; args: string[] }> = [];
  const shas = new Set<string>();
  const answer = (keys: string[], args: unknown[]) => {
    sent.push({ keys, args: args.map(String) });
    const reply = replies[sent.length - 1];
    if (!reply) throw new Error("the script was run more often than scripted");
    return reply;
  };
  const throughLibrary: LimiterCommands = {
    get: async () => null,
    set: async () => "OK",
    eval: async () => {
      throw new Error("EVAL sent: the library sends EVALSHA first");
    },
    evalsha: async <TArgs extends unknown[], TData>(sha: string, keys: string[], args: TArgs) => {
      shas.add(sha);
      return answer(keys, args) as TData;
    },
  };
  const native: LimiterCommands = {
    slidingWindow: async (currentKey, previousKey, limit, now, windowMs) =>
      answer([currentKey, previousKey], [limit, now, windowMs, 1]),
  };
  return { throughLibrary, native, sent, shas };
}

describe("the native Redis limiter against @upstash/ratelimit", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends the library's script, keys and arguments, and answers as the library does", async () => {
    const replies: Array<[number, number]> = [
      [1, 2],
      [0, 2],
      [-1, 2],
      // the next window; the refused key is asked again
      [1, 2],
      [4, 5],
    ];
    const rule = { limit: 2, windowMs: 60_000 };
    const start = Date.UTC(2026, 11, 7, 12, 0, 0);
    const calls: Array<{ at: number; key: string; rule: { limit: number; windowMs: number } }> = [
      { at: start + 100, key: "ip:a", rule },
      { at: start + 200, key: "ip:a", rule },
      { at: start + 59_000, key: "ip:a", rule },
      // refused until the window ends, without a script run
      { at: start + 59_500, key: "ip:a", rule },
      { at: start + 60_001, key: "ip:a", rule },
      { at: start + 60_002, key: "ip:b", rule: { limit: 5, windowMs: 1_000 } },
    ];
    const answers = async (commands: LimiterCommands) => {
      const limiter = createRedisLimiter(commands, { prefix: "p" });
      const results = [];
      for (const call of calls) {
        vi.setSystemTime(call.at);
        results.push(await limiter.limit(call.key, call.rule));
      }
      return results;
    };
    vi.useFakeTimers({ toFake: ["Date"] });
    const library = scripted(replies);
    const viaLibrary = await answers(library.throughLibrary);
    const native = scripted(replies);
    const viaNative = await answers(native.native);

    expect(viaNative).toEqual(viaLibrary);
    expect(viaNative.map((r) => r.success)).toEqual([true, true, false, false, true, true]);
    expect(viaNative[3]).toEqual({ success: false, limit: 2, remaining: 0, reset: start + 60_000 });
    expect(native.sent).toEqual(library.sent);
    expect(native.sent[0]).toEqual({
      keys: [`p:2/60000:ip:a:${start / 60_000}`, `p:2/60000:ip:a:${start / 60_000 - 1}`],
      args: ["2", String(start + 100), "60000", "1"],
    });
    expect(native.sent).toHaveLength(5);
    // The library asks Redis for its script by the sha of its text, which carries Upstash's flag.
    expect([...library.shas]).toEqual([
      sha1(slidingWindowScript.replace(/^#!lua\n/, "#!lua flags=allow-key-locking\n")),
    ]);
  });
});

/**
 * A Redis that knows no script until one is sent with EVAL, as after a restart or SCRIPT FLUSH
 * (the real one is shared with other suites, so it cannot be flushed): EVALSHA of an unknown sha
 * answers NOSCRIPT, a script answers [4 - runs before, 5].
 */
async function startForgetfulRedis() {
  const loaded = new Set<string>();
  const commands: string[] = [];
  const evaluated: string[] = [];
  let runs = 0;
  const sockets = new Set<Socket>();
  const run = () => `*2\r\n:${4 - runs++}\r\n:5\r\n`;
  const reply = ([name = "", first = ""]: string[]) => {
    switch (name.toUpperCase()) {
      case "INFO":
        return "$11\r\nloading:0\r\n\r\n";
      case "EVAL":
        commands.push("EVAL");
        evaluated.push(first);
        loaded.add(sha1(first));
        return run();
      case "EVALSHA":
        commands.push("EVALSHA");
        return loaded.has(first) ? run() : "-NOSCRIPT No matching script. Please use EVAL.\r\n";
      default:
        return "+OK\r\n";
    }
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    let pending = "";
    socket.setEncoding("utf8");
    socket.on("data", (data: string) => {
      pending += data;
      for (let command = parseCommand(pending); command; command = parseCommand(pending)) {
        pending = pending.slice(command.length);
        socket.write(reply(command.args));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no port");
  return {
    url: `redis://127.0.0.1:${address.port}`,
    port: address.port,
    commands,
    evaluated,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One RESP array of bulk strings (how clients send commands) at the start of `text`, if whole. */
function parseCommand(text: string): { args: string[]; length: number } | undefined {
  const line = (from: number) => {
    const end = text.indexOf("\r\n", from);
    return end < 0 ? undefined : { value: text.slice(from + 1, end), next: end + 2 };
  };
  const header = line(0);
  if (!header) return undefined;
  const args: string[] = [];
  let at = header.next;
  for (let i = 0; i < Number(header.value); i++) {
    const size = line(at);
    if (!size || text.length < size.next + Number(size.value) + 2) return undefined;
    args.push(text.slice(size.next, size.next + Number(size.value)));
    at = size.next + Number(size.value) + 2;
  }
  return { args, length: at };
}

describe("the native Redis client's sliding window", () => {
  const nativeRedis = nativeRedisClients();
  let redis: Awaited<ReturnType<typeof startForgetfulRedis>>;
  beforeAll(async () => {
    redis = await startForgetfulRedis();
  });
  afterAll(() => redis.close());

  it("sends the script with EVAL when Redis answers NOSCRIPT, then by its sha", async () => {
    const limiter = createRedisLimiter(nativeRedis(redis.url));
    const rule = { limit: 5, windowMs: 60_000 };
    expect((await limiter.limit("k", rule)).remaining).toBe(4);
    expect((await limiter.limit("k", rule)).remaining).toBe(3);
    expect(redis.commands).toEqual(["EVALSHA", "EVAL", "EVALSHA"]);
    expect(redis.evaluated).toEqual([slidingWindowScript]);
  });

  it("sends the commands of one turn of the event loop in one write", async () => {
    const limiter = createRedisLimiter(nativeRedis(redis.url));
    const rule = { limit: 5, windowMs: 60_000 };
    await limiter.limit("connected", rule);
    // Every socket write of the process: Writable's `_write`, or `_writev` for corked writes.
    const write = vi.spyOn(Socket.prototype, "_write");
    const writev = vi.spyOn(Socket.prototype, "_writev");
    let writers: unknown[];
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => limiter.limit(`client-${i}`, rule)));
    } finally {
      writers = [...write.mock.contexts, ...writev.mock.contexts];
      write.mockRestore();
      writev.mockRestore();
    }
    const toRedis = writers.filter(
      (socket) => socket instanceof Socket && socket.remotePort === redis.port,
    );
    expect(toRedis).toHaveLength(1);
  });
});
