import { Redis } from "ioredis";
import type { Logger } from "../ports/logger";
import type { AppEvents } from "./ws-hub";

const CHANNEL = "heimdall:live";

/**
 * Live events across Node processes: each process publishes what it
 * ingests to one Redis pub/sub channel and delivers what the others publish to its own sockets.
 */
export async function createRedisFanout(options: {
  url: string;
  logger: Logger;
  deliver(events: AppEvents): void;
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
      const message = JSON.parse(text) as AppEvents & { origin: string };
      if (message.origin !== origin)
        options.deliver({ appId: message.appId, events: message.events });
    } catch (error) {
      options.logger.warn("live fan-out message unreadable", { error });
    }
  });
  return {
    /** The events' JSON, written once by the hub, is spliced into the message as it is. */
    async publish({ appId, json }: Required<AppEvents>) {
      const message = `{"origin":"${origin}","appId":${JSON.stringify(appId)},"events":[${json.join(",")}]}`;
      await publisher.publish(CHANNEL, message);
    },
    async close() {
      await Promise.allSettled([subscriber.quit(), publisher.quit()]);
    },
  };
}
