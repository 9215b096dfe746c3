import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConnectRedis, createCacheAdapters } from "../src/adapters/cache";
import { createMemoryLimiter } from "../src/adapters/memory/limiter";
import { createMemoryRevocationStore } from "../src/adapters/memory/revocations";
import { createRedisLimiter } from "../src/adapters/redis/limiter";
import { createRedisRevocationStore } from "../src/adapters/redis/revocations";
import { createUpstashRedis } from "../src/adapters/upstash/redis";
import { parseConfig } from "../src/config";
import type { Clock, Limiter, RevocationStore } from "../src/ports";
import { testEnv } from "./support/app";
import { nativeRedisClients } from "./support/native-redis";
import { announceSkip, services } from "./support/services";
import { startUpstashRest, type UpstashRestServer } from "./support/upstash-rest";
import { until } from "./support/wait";

/**
 * One contract for each shared-state port, run on every adapter: in-memory always; with the real
 * Redis of TEST_REDIS_URL, Upstash (through a local Upstash-REST endpoint) and the native Redis
 * connection of REDIS_URL on Node, which must also see each other's state over the same keys.
 */
interface Adapters {
  name: string;
  /** Fresh adapters whose keys do not collide with another run's. */
  create(clock: Clock): { revocations: RevocationStore; limiter: Limiter };
}

const systemClock: Clock = { now: () => new Date() };
const adapters: Adapters[] = [
  {
    name: "in-memory",
    create: (clock) => ({
      revocations: createMemoryRevocationStore(clock),
      limiter: createMemoryLimiter(clock),
    }),
  },
];

let upstash: UpstashRestServer | undefined;
const nativeRedis = nativeRedisClients();
if (services.redis) {
  const redisUrl = services.redis;
  beforeAll(async () => {
    upstash = await startUpstashRest({ redisUrl });
  });
  afterAll(() => upstash?.close());
  adapters.push({
    name: "Upstash (real Redis)",
    create(clock) {
      if (!upstash) throw new Error("Upstash endpoint not started");
      const redis = createUpstashRedis({ url: upstash.url, token: upstash.token });
      const prefix = `heimdall-test:${crypto.randomUUID()}`;
      return {
        revocations: createRedisRevocationStore(redis, clock, { prefix: `${prefix}:revoked:` }),
        limiter: createRedisLimiter(redis, { prefix: `${prefix}:ratelimit` }),
      };
    },
  });
  adapters.push({
    name: "native Redis",
    create(clock) {
      const redis = nativeRedis(redisUrl);
      const prefix = `heimdall-test:${crypto.randomUUID()}`;
      return {
        revocations: createRedisRevocationStore(redis, clock, { prefix: `${prefix}:revoked:` }),
        limiter: createRedisLimiter(redis, { prefix: `${prefix}:ratelimit` }),
      };
    },
  });
} else {
  announceSkip("Upstash and native Redis adapters against real Redis", "TEST_REDIS_URL");
}

describe.each(adapters)("revocation store: $name", (adapter) => {
  it("answers a ping", async () => {
    await expect(adapter.create(systemClock).revocations.ping()).resolves.toBeUndefined();
  });

  const query = (tokenId: string, issuedAt: Date, subjects: string[] = []) => ({
    tokenId,
    issuedAt,
    subjects,
  });

  it("remembers a revoked token id until it expires, and only that id", async () => {
    const { revocations } = adapter.create(systemClock);
    const issuedAt = new Date();
    await revocations.revoke("jti-1", new Date(Date.now() + 400));
    expect(await revocations.isRevoked(query("jti-1", issuedAt))).toBe(true);
    expect(await revocations.isRevoked(query("jti-2", issuedAt))).toBe(false);
    await until(async () => !(await revocations.isRevoked(query("jti-1", issuedAt))), {
      message: "the revocation's expiry",
    });
    expect(await revocations.isRevoked(query("jti-1", issuedAt))).toBe(false);
  });

  it("ignores a revocation that has already expired", async () => {
    const { revocations } = adapter.create(systemClock);
    await revocations.revoke("old", new Date(Date.now() - 1000));
    await revocations.revokeIssuedBefore("usr:old", new Date(), new Date(Date.now() - 1000));
    expect(await revocations.isRevoked(query("old", new Date(0), ["usr:old"]))).toBe(false);
  });

  it("revokes a subject's tokens issued up to a moment, not the ones issued after", async () => {
    const { revocations } = adapter.create(systemClock);
    const at = new Date("2026-11-23T10:00:00.500Z");
    const until = new Date(Date.now() + 60_000);
    await revocations.revokeIssuedBefore("usr:1", at, until);
    const before = new Date("2026-11-23T09:59:00.000Z");
    const sameSecond = new Date("2026-11-23T10:00:00.000Z");
    const after = new Date("2026-11-23T10:00:01.000Z");
    expect(await revocations.isRevoked(query("a", before, ["app:1", "usr:1"]))).toBe(true);
    expect(await revocations.isRevoked(query("b", sameSecond, ["usr:1"]))).toBe(true);
    expect(await revocations.isRevoked(query("c", after, ["usr:1"]))).toBe(false);
    expect(await revocations.isRevoked(query("d", before, ["usr:2", "ses:9"]))).toBe(false);
  });

  it("keeps the latest revocation time of a subject", async () => {
    const { revocations } = adapter.create(systemClock);
    const until = new Date(Date.now() + 60_000);
    await revocations.revokeIssuedBefore("ses:1", new Date("2026-11-23T10:00:10Z"), until);
    await revocations.revokeIssuedBefore("ses:1", new Date("2026-11-23T10:00:00Z"), until);
    expect(
      await revocations.isRevoked(query("x", new Date("2026-11-23T10:00:05Z"), ["ses:1"])),
    ).toBe(true);
  });

  it("answers many tokens at once, in order, as one-by-one checks would", async () => {
    const { revocations } = adapter.create(systemClock);
    const until = new Date(Date.now() + 60_000);
    const issuedAt = new Date("2026-11-23T10:00:00Z");
    await revocations.revoke("jti-revoked", until);
    await revocations.revokeIssuedBefore("ses:gone", new Date("2026-11-23T10:00:30Z"), until);
    const queries = [
      query("jti-ok", issuedAt, ["usr:1", "ses:live"]),
      query("jti-revoked", issuedAt, ["usr:1"]),
      query("jti-other", issuedAt, ["usr:1", "ses:gone"]),
      query("jti-later", new Date("2026-11-23T10:01:00Z"), ["ses:gone"]),
      query("jti-ok", issuedAt, ["usr:1", "ses:live"]),
    ];
    const answers = await revocations.revokedAmong(queries);
    expect(answers).toEqual([false, true, true, false, false]);
    const oneByOne = await Promise.all(queries.map((q) => revocations.isRevoked(q)));
    expect(oneByOne).toEqual(answers);
    expect(await revocations.revokedAmong([])).toEqual([]);
  });
});

describe.each(adapters)("limiter: $name", (adapter) => {
  const rule = { limit: 5, windowMs: 60_000 };

  it("lets `limit` requests through, then blocks with remaining 0 and a reset time", async () => {
    const { limiter } = adapter.create(systemClock);
    const results = [];
    for (let i = 0; i < 7; i++) results.push(await limiter.limit("client-a", rule));
    expect(results.map((r) => r.success)).toEqual([true, true, true, true, true, false, false]);
    expect(results.map((r) => r.remaining)).toEqual([4, 3, 2, 1, 0, 0, 0]);
    expect(results[5]?.limit).toBe(5);
    const reset = results[5]?.reset ?? 0;
    expect(reset).toBeGreaterThan(Date.now());
    expect(reset).toBeLessThanOrEqual(Date.now() + rule.windowMs);
  });

  it("counts keys apart", async () => {
    const { limiter } = adapter.create(systemClock);
    for (let i = 0; i < 5; i++) await limiter.limit("client-b", rule);
    expect((await limiter.limit("client-b", rule)).success).toBe(false);
    expect((await limiter.limit("client-c", rule)).success).toBe(true);
  });

  it("lets no more than the limit through under 200 concurrent requests", async () => {
    const { limiter } = adapter.create(systemClock);
    const results = await Promise.all(
      Array.from({ length: 200 }, () => limiter.limit("burst", { limit: 100, windowMs: 60_000 })),
    );
    expect(results.filter((r) => r.success)).toHaveLength(100);
  });

  it("frees the key again once the window has slid past", async () => {
    const { limiter } = adapter.create(systemClock);
    const short = { limit: 2, windowMs: 1000 };
    // Start at the beginning of a window, so the three calls fall in one window however slow the
    // machine is: calls on both sides of a boundary count the earlier ones only in part.
    await new Promise((resolve) =>
      setTimeout(resolve, short.windowMs - (Date.now() % short.windowMs)),
    );
    await limiter.limit("slide", short);
    await limiter.limit("slide", short);
    expect((await limiter.limit("slide", short)).success).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 2 * short.windowMs + 100));
    expect((await limiter.limit("slide", short)).success).toBe(true);
  });
});

describe.runIf(services.redis)("Upstash and native Redis over the same Redis", () => {
  /** Both adapters on one fresh prefix, as a Worker on Upstash and Node on REDIS_URL would be. */
  const pair = () => {
    if (!upstash || !services.redis) throw new Error("Upstash endpoint not started");
    const viaUpstash = createUpstashRedis({ url: upstash.url, token: upstash.token });
    const viaNative = nativeRedis(services.redis);
    const prefix = `heimdall-test:${crypto.randomUUID()}`;
    const build = (redis: typeof viaUpstash | typeof viaNative) => ({
      revocations: createRedisRevocationStore(redis, systemClock, { prefix: `${prefix}:revoked:` }),
      limiter: createRedisLimiter(redis, { prefix: `${prefix}:ratelimit` }),
    });
    return { upstash: build(viaUpstash), native: build(viaNative) };
  };
  const expiresAt = new Date(Date.now() + 60_000);
  const issuedAt = new Date("2026-11-23T10:00:00Z");

  it("sees a revocation written through the other, both ways", async () => {
    const { upstash, native } = pair();
    await native.revocations.revoke("jti-native", expiresAt);
    await upstash.revocations.revoke("jti-upstash", expiresAt);
    await native.revocations.revokeIssuedBefore("ses:native", issuedAt, expiresAt);
    await upstash.revocations.revokeIssuedBefore("usr:upstash", issuedAt, expiresAt);
    const queries = [
      { tokenId: "jti-native", issuedAt, subjects: [] },
      { tokenId: "jti-upstash", issuedAt, subjects: [] },
      { tokenId: "a", issuedAt, subjects: ["ses:native"] },
      { tokenId: "b", issuedAt, subjects: ["usr:upstash"] },
      { tokenId: "c", issuedAt, subjects: ["usr:other"] },
    ];
    expect(await upstash.revocations.revokedAmong(queries)).toEqual([
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(await native.revocations.revokedAmong(queries)).toEqual([true, true, true, true, false]);
    // The later of two revocation times wins whichever side wrote it.
    await upstash.revocations.revokeIssuedBefore(
      "ses:native",
      new Date(issuedAt.getTime() + 5000),
      expiresAt,
    );
    const later = {
      tokenId: "d",
      issuedAt: new Date(issuedAt.getTime() + 3000),
      subjects: ["ses:native"],
    };
    expect(await native.revocations.isRevoked(later)).toBe(true);
  });

  it("spends a single-use id once across both", async () => {
    const { upstash, native } = pair();
    expect(await native.revocations.spend("ticket-1", expiresAt)).toBe(true);
    expect(await upstash.revocations.spend("ticket-1", expiresAt)).toBe(false);
    expect(await upstash.revocations.spend("ticket-2", expiresAt)).toBe(true);
    expect(await native.revocations.spend("ticket-2", expiresAt)).toBe(false);
  });

  it("counts a limit consumed through one against the other", async () => {
    const { upstash, native } = pair();
    const rule = { limit: 6, windowMs: 60_000 };
    const sides = [native, upstash, native, upstash, native, upstash, native, upstash];
    const results = [];
    for (const side of sides) results.push(await side.limiter.limit("shared-client", rule));
    expect(results.map((r) => r.success)).toEqual([
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(results.map((r) => r.remaining)).toEqual([5, 4, 3, 2, 1, 0, 0, 0]);
    expect(new Set(results.map((r) => r.reset)).size).toBe(1);
  });
});

describe("which adapters createCacheAdapters picks", () => {
  const closedPort = "redis://127.0.0.1:1";
  const upstashEnv = {
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
    UPSTASH_REDIS_REST_TOKEN: "x",
  };
  const pick = (env: Record<string, string>, connectRedis?: ConnectRedis) =>
    createCacheAdapters(parseConfig({ ...testEnv, ...env }), systemClock, { connectRedis });

  it("takes REDIS_URL through the runtime's connection, which answers at once when Redis is down", async () => {
    const opened: string[] = [];
    const cache = pick({ REDIS_URL: closedPort }, (url) => {
      opened.push(url);
      return nativeRedis(url);
    });
    expect(cache.cache).toBe("redis");
    expect(opened).toEqual([closedPort]);
    const started = performance.now();
    await expect(cache.revocations.ping()).rejects.toThrow();
    await expect(
      cache.revocations.isRevoked({ tokenId: "t", issuedAt: new Date(), subjects: ["usr:1"] }),
    ).rejects.toThrow();
    await expect(cache.limiter.limit("k", { limit: 5, windowMs: 60_000 })).rejects.toThrow();
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it("keeps memory where the runtime cannot open a Redis connection (Workers)", () => {
    expect(pick({ REDIS_URL: closedPort }).cache).toBe("memory");
  });

  it("takes Upstash when both are set, and opens no Redis connection", () => {
    const opened: string[] = [];
    const cache = pick({ ...upstashEnv, REDIS_URL: closedPort }, (url) => {
      opened.push(url);
      return nativeRedis(url);
    });
    expect(cache.cache).toBe("upstash");
    expect(opened).toEqual([]);
  });
});
