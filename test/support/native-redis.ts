import { afterAll } from "vitest";
import { createConsoleLogger } from "../../src/adapters/console-logger";
import { createNodeRedis, type NodeRedis } from "../../src/adapters/node/redis";

/**
 * A factory of native Redis clients (ioredis, as `REDIS_URL` on Node) for one test file; every
 * client it made is closed after the file's tests.
 */
export function nativeRedisClients() {
  const clients: NodeRedis[] = [];
  afterAll(() => Promise.all(clients.map((client) => client.close())));
  return (url: string): NodeRedis => {
    const client = createNodeRedis({ url, logger: createConsoleLogger({ level: "silent" }) });
    clients.push(client);
    return client;
  };
}
