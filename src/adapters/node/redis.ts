import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import type { SetCommandOptions } from "@upstash/redis";
import { Redis } from "ioredis";
import type { Logger } from "../../ports/logger";
import type { RedisCommands, SlidingWindowCommand } from "../redis/commands";
import { slidingWindowScript } from "../redis/sliding-window";

/** As the Upstash client's: a Redis that accepts the command but never answers costs a second. */
const COMMAND_TIMEOUT_MS = 1_000;

export interface NodeRedis extends RedisCommands {
  slidingWindow: SlidingWindowCommand;
  close(): Promise<void>;
}

/**
 * A plain Redis over TCP (ioredis) with the Upstash REST client's command shapes and replies,
 * for the revocation store, and the limiter's sliding window as one EVALSHA, on the request
 * path. A command gets one try: no offline queue and no resend after a reconnect (a SET NX or a
 * limit sent twice would count twice), so while Redis is down every command fails at once
 * (revocation checks answer 503, the limiter fails open) and the client reconnects in the
 * background.
 */
export function createNodeRedis(options: { url: string; logger: Logger }): NodeRedis {
  const client = new Redis(options.url, {
    commandTimeout: COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
  });

  // One line when the connection is lost and one when it is back, not one per reconnect attempt.
  let reachable = true;
  client.on("error", (error) => {
    if (!reachable) return;
    reachable = false;
    options.logger.warn("redis unreachable", { error });
  });
  client.on("ready", () => {
    if (!reachable) options.logger.info("redis reachable again");
    reachable = true;
  });

  // Without an offline queue a command sent while the socket is still opening would fail, so
  // until the first attempt ends (connected, refused, or a command timeout) commands wait for it.
  let opening: Promise<void> | undefined = new Promise<void>((resolve) => {
    const opened = () => {
      opening = undefined;
      resolve();
    };
    client.once("ready", opened);
    client.once("close", opened);
    setTimeout(opened, COMMAND_TIMEOUT_MS).unref();
  });

  // The commands of one turn of the event loop leave in one write (and come back in one read):
  // under load each request sends its command from a socket event of its own, and a write per
  // command costs more CPU than the command. Corked until the loop's check phase, no later.
  let corked: Socket | undefined;
  const uncork = () => {
    corked?.uncork();
    corked = undefined;
  };
  const batch = () => {
    if (corked || !client.stream) return;
    corked = client.stream;
    corked.cork();
    setImmediate(uncork);
  };
  const call = (command: string, args: Array<string | number>) => {
    batch();
    return client.call(command, ...args);
  };
  const send = (command: string, args: Array<string | number>) =>
    opening ? opening.then(() => call(command, args)) : call(command, args);

  return {
    get: async <TData>(key: string) => deserialize(await send("GET", [key])) as TData | null,
    mget: async <TData extends unknown[]>(...keys: [string[]] | string[]) =>
      ((await send("MGET", keys.flat())) as Array<string | null>).map(deserialize) as TData,
    set: async <TData>(key: string, value: TData, opts?: SetCommandOptions) =>
      (await send("SET", [key, serialize(value), ...setFlags(opts)])) as "OK" | TData | null,
    eval: async <TArgs extends unknown[], TData = unknown>(
      script: string,
      keys: string[],
      args: TArgs,
    ) =>
      (await send("EVAL", [
        script,
        keys.length,
        ...keys,
        ...args.map((arg) => String(arg)),
      ])) as TData,
    async slidingWindow(currentKey, previousKey, limit, now, windowMs) {
      if (opening) await opening;
      const keysAndArgs = [2, currentKey, previousKey, limit, now, windowMs, 1] as const;
      batch();
      try {
        return (await client.evalsha(slidingWindowSha, ...keysAndArgs)) as [number, number];
      } catch (error) {
        // Redis keeps no script across a restart or SCRIPT FLUSH; EVAL loads it again.
        if (!(error instanceof Error && error.message.startsWith("NOSCRIPT"))) throw error;
        batch();
        return (await client.eval(slidingWindowScript, ...keysAndArgs)) as [number, number];
      }
    },
    ping: async () => String(await send("PING", [])),
    async close() {
      // QUIT needs a connection; without one, stop reconnecting.
      await client.quit().catch(() => client.disconnect());
    },
  };
}

const slidingWindowSha = createHash("sha1").update(slidingWindowScript).digest("hex");

/** As the Upstash client stores a value: strings as they are, anything else as JSON. */
const serialize = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

/**
 * As the Upstash client reads one: JSON when it parses (`"1"` is 1), the string otherwise, and a
 * number that would not come back as the same text (past 2^53) stays a string.
 */
function deserialize(reply: unknown): unknown {
  if (typeof reply !== "string") return reply;
  try {
    const parsed: unknown = JSON.parse(reply);
    return typeof parsed === "number" && String(parsed) !== reply ? reply : parsed;
  } catch {
    return reply;
  }
}

/** `{ px: 500, nx: true }` → `PX 500 NX`: each option is the Redis flag of its name. */
const setFlags = (opts?: SetCommandOptions) =>
  Object.entries(opts ?? {}).flatMap(([name, value]): Array<string | number> => {
    if (value === true) return [name.toUpperCase()];
    if (typeof value === "number") return [name.toUpperCase(), value];
    return [];
  });
