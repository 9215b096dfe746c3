import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import { Redis } from "ioredis";

/**
 * Upstash's REST API in front of a real Redis, for tests (no npm package emulates it). Speaks
 * what `@upstash/redis` and `@upstash/ratelimit` send: single commands (`POST /`, and the path
 * form `/cmd/arg…`), `/pipeline`, `/multi-exec`, bearer auth, and base64 response encoding.
 */
export interface UpstashRestServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

type Command = Array<string | number | boolean | null>;
type Reply = string | number | null | Reply[];

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

export async function startUpstashRest(options: {
  redisUrl: string;
  token?: string;
  port?: number;
}): Promise<UpstashRestServer> {
  const token = options.token ?? randomUUID();
  const redis = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  // sha1 of a script as the client sent it → sha1 of the script Redis actually loaded.
  const loadedAs = new Map<string, string>();

  /**
   * `@upstash/ratelimit`'s scripts start with `#!lua flags=allow-key-locking`, which open-source
   * Redis 7.0 refuses; strip the flags and remember the sha the client will ask for.
   */
  const rewrite = (command: Command): Command => {
    const [name, ...args] = command;
    const upper = String(name).toUpperCase();
    if ((upper === "EVAL" || upper === "EVAL_RO") && typeof args[0] === "string") {
      const original = args[0];
      const stripped = stripFlags(original);
      loadedAs.set(sha1(original), sha1(stripped));
      return [upper, stripped, ...args.slice(1)];
    }
    if ((upper === "EVALSHA" || upper === "EVALSHA_RO") && typeof args[0] === "string") {
      return [upper, loadedAs.get(args[0]) ?? args[0], ...args.slice(1)];
    }
    return [upper, ...args];
  };

  const run = async (command: Command): Promise<{ result: Reply } | { error: string }> => {
    const [name, ...args] = command;
    try {
      if (String(name).toUpperCase() === "SCRIPT" && String(args[0]).toUpperCase() === "LOAD") {
        const original = String(args[1]);
        const loaded = String(await redis.call("SCRIPT", "LOAD", stripFlags(original)));
        loadedAs.set(sha1(original), loaded);
        return { result: sha1(original) };
      }
      const [upper, ...rest] = rewrite(command);
      const reply = await redis.callBuffer(String(upper), ...rest.map((arg) => String(arg)));
      return { result: decode(reply) };
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  };

  const server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${token}`)
      return send(401, { error: "Unauthorized" });
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    const encode = (answer: { result: Reply } | { error: string }) =>
      "result" in answer && base64 ? { result: toBase64(answer.result) } : answer;

    const path = new URL(req.url ?? "/", "http://upstash").pathname;
    const body = await readBody(req);
    // A malformed body or an aborted transaction must answer, not crash the test process.
    try {
      if (path === "/pipeline" || path === "/multi-exec") {
        const commands = JSON.parse(body) as Command[];
        if (path === "/pipeline") return send(200, (await runAll(commands, run)).map(encode));
        // A transaction of its own: MULTI on the shared connection would swallow other requests.
        const transaction = redis.multi();
        for (const command of commands) {
          const [upper, ...rest] = rewrite(command);
          transaction.callBuffer(String(upper), ...rest.map((arg) => String(arg)));
        }
        const results = (await transaction.exec()) ?? [];
        return send(
          200,
          results.map(([error, reply]) =>
            encode(error ? { error: error.message } : { result: decode(reply) }),
          ),
        );
      }
      const command: Command =
        path === "/"
          ? (JSON.parse(body) as Command)
          : [...path.slice(1).split("/").map(decodeURIComponent), ...(body ? [body] : [])];
      const answer = await run(command);
      return send("error" in answer ? 400 : 200, encode(answer));
    } catch (error) {
      return send(400, { error: error instanceof Error ? error.message : String(error) });
    }
  });

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await redis.quit();
    },
  };
}

/** Commands of one request run in order, as Upstash does. */
async function runAll<T>(commands: Command[], run: (command: Command) => Promise<T>) {
  const answers: T[] = [];
  for (const command of commands) answers.push(await run(command));
  return answers;
}

function stripFlags(script: string) {
  return script.replace(/^#!lua flags=[^\n]*\n/, "#!lua\n");
}

function decode(reply: unknown): Reply {
  if (Buffer.isBuffer(reply)) return reply.toString("utf8");
  if (Array.isArray(reply)) return reply.map(decode);
  if (typeof reply === "number" || typeof reply === "string" || reply === null) return reply;
  return String(reply);
}

function toBase64(reply: Reply): Reply {
  if (typeof reply === "string") return Buffer.from(reply, "utf8").toString("base64");
  if (Array.isArray(reply)) return reply.map(toBase64);
  return reply;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      data += chunk;
    });
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}
