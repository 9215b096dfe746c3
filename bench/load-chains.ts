/**
 * A load generator for single-use tokens, run as its own process (like autocannon): N chains at
 * once for S seconds, each posting its refresh token, taking the next one from the answer and
 * posting that. A fixed-body load tool cannot do this, since every token works once.
 *
 * Input (JSON on stdin):
 *   { url, headers?, format: "json" | "form", fields?, tokenField, responseField?, tokens, seconds }
 * `fields` are sent with every request, the chain's token under `tokenField`; the next token is
 * read from `responseField` (default `refresh_token`) of the JSON answer.
 *
 * Output (JSON on stdout): { requestsPerSecond, p50, p99, requests, errors, chains, tokens,
 * firstError? } — latencies in ms; `tokens` are the chains' live tokens at the end, so a warm-up
 * run can hand them to the measured one. A chain that gets a non-2xx answer (or a network error)
 * counts an error and stops, since its token may be spent.
 */
import { Agent, request } from "node:http";

export interface ChainInput {
  url: string;
  headers?: Record<string, string>;
  format: "json" | "form";
  fields?: Record<string, string>;
  tokenField: string;
  responseField?: string;
  tokens: string[];
  seconds: number;
}

export interface ChainResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  chains: number;
  tokens: string[];
  firstError?: string;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function readStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) text += chunk;
  return text;
}

async function main() {
  const input = JSON.parse(await readStdin()) as ChainInput;
  const url = new URL(input.url);
  const agent = new Agent({ keepAlive: true, maxSockets: input.tokens.length });
  const responseField = input.responseField ?? "refresh_token";
  const contentType =
    input.format === "json" ? "application/json" : "application/x-www-form-urlencoded";
  const encode = (token: string) => {
    const fields = { ...input.fields, [input.tokenField]: token };
    return input.format === "json"
      ? JSON.stringify(fields)
      : new URLSearchParams(fields).toString();
  };

  /** One request: the status and the body text. */
  const post = (body: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        url,
        {
          method: "POST",
          agent,
          headers: {
            ...input.headers,
            "content-type": contentType,
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });

  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const fail = (message: string) => {
    errors++;
    firstError ??= message.slice(0, 300);
  };
  const started = performance.now();
  const deadline = started + input.seconds * 1000;
  const finals = await Promise.all(
    input.tokens.map(async (first) => {
      let token = first;
      while (performance.now() < deadline) {
        const sent = performance.now();
        try {
          const { status, text } = await post(encode(token));
          if (status < 200 || status >= 300) {
            fail(`${status} ${text}`);
            return token;
          }
          const next = (JSON.parse(text) as Record<string, unknown>)[responseField];
          if (typeof next !== "string") {
            fail(`no ${responseField} in ${text}`);
            return token;
          }
          latencies.push(performance.now() - sent);
          token = next;
        } catch (error) {
          fail(String(error));
          return token;
        }
      }
      return token;
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const result: ChainResult = {
    requestsPerSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requests: latencies.length,
    errors,
    chains: input.tokens.length,
    tokens: finals,
    ...(firstError ? { firstError } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
