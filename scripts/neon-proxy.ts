import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect } from "node:net";
import pg from "pg";
import { WebSocketServer } from "ws";

const loopback = ["127.0.0.1", "localhost", "::1", "[::1]"];

/**
 * Neon's two ways in, served for a local Postgres, on 127.0.0.1:`port` (0: a free one):
 *
 * - WebSockets: the serverless driver speaks the Postgres protocol over a WebSocket to Neon's
 *   proxy; `GET /v1?address=host:port` upgraded, bytes piped both ways.
 * - SQL over HTTP (the driver's `neon()` and its pool's one-shot queries): `POST /sql`, Neon's
 *   documented protocol, with the connection string in `Neon-Connection-String` and a body of
 *   `{query, params}` or, run in one transaction, `{queries: [...]}`; each answer is
 *   `{command, rowCount, fields, rows}` with every value as Postgres's text and every row an
 *   array (the driver parses them by `dataTypeID`), a Postgres error a 400 with its fields.
 *
 * Only loopback targets are accepted. Used by `npm run dev:worker` (scripts/dev-worker.ts) and the
 * tests that run the Worker or the Neon driver.
 */
export async function startNeonProxy(port = 0): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    serveSql(request, response).catch((error: unknown) => {
      answer(response, 500, { message: error instanceof Error ? error.message : String(error) });
    });
  });
  const sockets = new WebSocketServer({ server });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));

  sockets.on("connection", (socket, request) => {
    const address = new URL(request.url ?? "/", "http://proxy").searchParams.get("address") ?? "";
    const [host, port] = address.split(":");
    if (!host || !port || !loopback.includes(host)) {
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
        for (const client of sockets.clients) client.terminate();
        sockets.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface SqlQuery {
  query: string;
  params?: unknown[];
}

/** Every value as Postgres sent it: the driver applies its own type parsers. */
const asText = { getTypeParser: () => (value: string) => value };

async function serveSql(request: IncomingMessage, response: ServerResponse) {
  if (
    request.method !== "POST" ||
    new URL(request.url ?? "/", "http://proxy").pathname !== "/sql"
  ) {
    answer(response, 404, { message: "POST /sql or a WebSocket upgrade on /v1" });
    return;
  }
  const connectionString = request.headers["neon-connection-string"];
  if (typeof connectionString !== "string" || !URL.canParse(connectionString)) {
    answer(response, 400, { message: "Neon-Connection-String is missing or not a URL" });
    return;
  }
  if (!loopback.includes(new URL(connectionString).hostname)) {
    answer(response, 400, { message: "only loopback addresses" });
    return;
  }
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as
    | SqlQuery
    | { queries: SqlQuery[] };

  // A connection per request, as Neon's proxy gives each one a session: no state outlives it.
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: 3_000,
    query_timeout: 5_000,
  });
  client.on("error", () => {});
  try {
    await client.connect();
    const run = async ({ query, params = [] }: SqlQuery) => {
      const result = await client.query({
        text: query,
        values: params,
        rowMode: "array",
        types: asText,
      });
      return {
        command: result.command,
        rowCount: result.rowCount,
        fields: result.fields,
        rows: result.rows,
        rowAsArray: true,
      };
    };
    if ("queries" in body) {
      await client.query(`BEGIN${batchMode(request)}`);
      const results = [];
      try {
        for (const query of body.queries) results.push(await run(query));
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      }
      answer(response, 200, { results });
    } else {
      answer(response, 200, await run(body));
    }
  } catch (error) {
    answer(response, 400, errorFields(error));
  } finally {
    await client.end().catch(() => {});
  }
}

/** The transaction mode of a batch, from Neon's `Neon-Batch-*` headers. */
function batchMode(request: IncomingMessage) {
  const isolation = request.headers["neon-batch-isolation-level"];
  const readOnly = request.headers["neon-batch-read-only"];
  const deferrable = request.headers["neon-batch-deferrable"];
  const levels: Record<string, string> = {
    ReadUncommitted: "READ UNCOMMITTED",
    ReadCommitted: "READ COMMITTED",
    RepeatableRead: "REPEATABLE READ",
    Serializable: "SERIALIZABLE",
  };
  const modes = [
    typeof isolation === "string" && levels[isolation]
      ? `ISOLATION LEVEL ${levels[isolation]}`
      : "",
    readOnly === "true" ? "READ ONLY" : readOnly === "false" ? "READ WRITE" : "",
    deferrable === "true" ? "DEFERRABLE" : deferrable === "false" ? "NOT DEFERRABLE" : "",
  ].filter(Boolean);
  return modes.length > 0 ? ` ${modes.join(" ")}` : "";
}

/** A Postgres error as Neon reports it: its message and the fields the driver copies. */
function errorFields(error: unknown) {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields: Record<string, unknown> = { message: error.message };
  for (const [name, value] of Object.entries(error)) {
    if (typeof value === "string" || typeof value === "number") fields[name] = value;
  }
  return fields;
}

function answer(response: ServerResponse, status: number, body: unknown) {
  if (response.headersSent) return;
  response.writeHead(status, { "Content-Type": "application/json" });
  response.end(JSON.stringify(body));
}
