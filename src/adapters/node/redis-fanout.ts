import { Redis } from "ioredis";
import type { Logger } from "../../ports/logger";

const CHANNEL = "heimdall:live";

export interface LiveEvent {
  appId: string;
  event: unknown;
}

/**
 * Live events across Node processes (seed 003's design): each process publishes what it
 * ingests to one Redis pub/sub channel and delivers what the others publish to its own sockets.
 */
export async function createRedisFanout(options: {
  url: string;
  logger: Logger;
  deliver(event: LiveEvent): void;
}) {
  const origin = crypto.randomUUID();
  const publisher = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
  const subscriber = new Redis(options.url, { lazyConnect: true });
  for (const client of [publisher, subscriber]) {
    client.on("error", (error) => options.logger.warn("live fan-out redis error", { error }));
  }
  await Promise.all([publisher.connect(), subscriber.connect()]);
  await subscriber.subscribe(CHANNEL);
  subscriber.on("message", (_channel, text) => {
    try {
      const message = JSON.parse(text) as LiveEvent & { origin: string };
      if (message.origin !== origin)
        options.deliver({ appId: message.appId, event: message.event });
    } catch (error) {
      options.logger.warn("live fan-out message unreadable", { error });
    }
  });
  return {
    async publish(event: LiveEvent) {
      await publisher.publish(CHANNEL, JSON.stringify({ ...event, origin }));
    },
    async close() {
      await Promise.allSettled([subscriber.quit(), publisher.quit()]);
    },
  };
}
