import { createServer, type Server, Socket } from "node:net";

/**
 * What the proxy does with traffic:
 * - `up`: forwards every connection to the target;
 * - `down`: the port is closed (new connections are refused) and open ones are destroyed, as when
 *   the server stops;
 * - `blackhole`: connections are accepted and open ones kept, but nothing is forwarded either
 *   way, so clients wait for answers that never come (a network partition, a frozen server).
 */
export type ProxyMode = "up" | "down" | "blackhole";

export interface TcpProxy {
  /** The proxy's port on 127.0.0.1; it keeps it across modes. */
  port: number;
  mode: ProxyMode;
  /** Switches mode. Back to `up`, connections left hanging by a blackhole are destroyed. */
  set(mode: ProxyMode): Promise<void>;
  close(): Promise<void>;
}

interface Connection {
  client: Socket;
  upstream?: Socket;
  /** Still forwarding; false once a blackhole cut it. */
  live: boolean;
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target`, for tests that take a dependency (Postgres, an
 * HTTP endpoint) away without touching the real server.
 *
 * @example
 * const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5432 });
 * await proxy.set("blackhole"); // clients of 127.0.0.1:${proxy.port} now hang
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const connections = new Set<Connection>();
  let mode: ProxyMode = "up";
  let server: Server | undefined;
  let port = 0;

  const drop = (connection: Connection) => {
    connections.delete(connection);
    connection.client.destroy();
    connection.upstream?.destroy();
  };

  const accept = (client: Socket) => {
    const connection: Connection = { client, live: mode === "up" };
    connections.add(connection);
    client.on("error", () => drop(connection));
    client.on("close", () => drop(connection));
    if (!connection.live) {
      // Read and discard: the client's bytes go nowhere and it never hears back.
      client.resume();
      return;
    }
    const upstream = new Socket();
    connection.upstream = upstream;
    upstream.on("error", () => drop(connection));
    upstream.on("close", () => drop(connection));
    upstream.connect(target.port, target.host, () => {
      if (!connection.live) return;
      client.pipe(upstream);
      upstream.pipe(client);
    });
  };

  const open = () =>
    new Promise<void>((resolve, reject) => {
      const next = createServer(accept);
      next.once("error", reject);
      next.listen(port, "127.0.0.1", () => {
        next.off("error", reject);
        port = (next.address() as { port: number }).port;
        server = next;
        resolve();
      });
    });

  /** Stops listening at once (the port refuses from now on) without waiting for open sockets. */
  const shut = () => {
    const closing = server;
    server = undefined;
    return new Promise<void>((resolve) => (closing ? closing.close(() => resolve()) : resolve()));
  };

  await open();
  return {
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    async set(next) {
      if (next === mode) return;
      const previous = mode;
      mode = next;
      if (next === "down") {
        const closed = shut();
        for (const connection of [...connections]) drop(connection);
        await closed;
        return;
      }
      if (next === "blackhole") {
        for (const connection of connections) {
          connection.live = false;
          connection.client.unpipe();
          connection.upstream?.unpipe();
          connection.client.resume();
          connection.upstream?.resume();
        }
        if (previous === "down") await open();
        return;
      }
      for (const connection of [...connections]) if (!connection.live) drop(connection);
      if (previous === "down") await open();
    },
    async close() {
      mode = "down";
      const closed = shut();
      for (const connection of [...connections]) drop(connection);
      await closed;
    },
  };
}
