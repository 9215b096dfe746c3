import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announceSkip, services } from "./support/services";
import { startUpstashRest, type UpstashRestServer } from "./support/upstash-rest";

/** The test harness's Upstash endpoint must speak the real protocol, or the Upstash suites lie. */
describe.runIf(Boolean(services.redis))("Upstash REST endpoint of the test harness", () => {
  let server: UpstashRestServer;
  let redis: Redis;
  const prefix = `heimdall-test:${crypto.randomUUID()}`;

  beforeAll(async () => {
    server = await startUpstashRest({ redisUrl: services.redis ?? "" });
    redis = new Redis({ url: server.url, token: server.token, enableTelemetry: false });
  });
  afterAll(async () => {
    await redis.del(`${prefix}:a`, `${prefix}:h`, `${prefix}:n`);
    await server.close();
  });

  it("round-trips strings, JSON, hashes and numbers (base64-encoded replies)", async () => {
    await redis.set(`${prefix}:a`, { name: "émoji 🚀" });
    expect(await redis.get(`${prefix}:a`)).toEqual({ name: "émoji 🚀" });
    await redis.hset(`${prefix}:h`, { x: "1", y: "two" });
    expect(await redis.hgetall(`${prefix}:h`)).toEqual({ x: 1, y: "two" });
    expect(await redis.incr(`${prefix}:n`)).toBe(1);
  });

  it("runs a MULTI/EXEC transaction", async () => {
    const results = await redis.multi().incr(`${prefix}:n`).incr(`${prefix}:n`).exec();
    expect(results).toEqual([2, 3]);
  });

  it("refuses a wrong token", async () => {
    const intruder = new Redis({ url: server.url, token: "wrong", enableTelemetry: false });
    await expect(intruder.get(`${prefix}:a`)).rejects.toThrow(/Unauthorized/);
  });

  it("runs scripts with the flags open-source Redis rejects, by EVAL and by EVALSHA", async () => {
    const script = "#!lua flags=allow-key-locking\nreturn ARGV[1]";
    expect(await redis.eval(script, [], ["hello"])).toBe("hello");
    const sha = await redis.scriptLoad(script);
    expect(await redis.evalsha(sha, [], ["again"])).toBe("again");
    await expect(redis.evalsha("0".repeat(40), [], [])).rejects.toThrow(/NOSCRIPT/);
  });
});

if (!services.redis) announceSkip("Upstash REST endpoint check", "TEST_REDIS_URL");
