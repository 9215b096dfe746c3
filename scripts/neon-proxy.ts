import { connect } from "node:net";
import { WebSocketServer } from "ws";

/**
 * Neon's serverless driver speaks the Postgres protocol over a WebSocket to Neon's proxy. This
 * is that proxy for a local server: `GET /v1?address=host:port` upgraded, bytes piped both ways.
 * Only loopback targets are accepted. It listens on 127.0.0.1:`port` (0: a free one). Used by
 * `npm run dev:worker` (scripts/dev-worker.ts) and the tests that run the Worker or the Neon driver.
 */
export async function startNeonProxy(port = 0): Promise<{ url: string; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: "127.0.0.1", port });
  await new Promise<void>((resolve) => server.once("listening", resolve));

  server.on("connection", (socket, request) => {
    const address = new URL(request.url ?? "/", "http://proxy").searchParams.get("address") ?? "";
    const [host, port] = address.split(":");
    if (!host || !port || !["127.0.0.1", "localhost", "::1"].includes(host)) {
      socket.close(1008, "only loopback addresses");
      return;
    }
    const tcp = connect(Number(port), host);
    socket.on("message", (data) => tcp.write(data as Buffer));
    socket.on("close", () => tcp.end());
    socket.on("error", () => tcp.destroy());
    tcp.on("data", (data) => socket.send(data));
    tcp.on("close", () => socket.close());
    tcp.on("error", () => socket.terminate());
  });

  const address = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${address.port}/v1`,
    close: () =>
      new Promise((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}
