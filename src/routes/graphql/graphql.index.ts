import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import { addResolversToSchema } from "@graphql-tools/schema";
import { buildSchema, GraphQLError, type GraphQLSchema, isObjectType, printSchema } from "graphql";
import {
  createYoga,
  type GraphQLParams,
  maskError,
  type Plugin,
  useErrorHandler,
} from "graphql-yoga";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { createRouter } from "../../http/router";
import { ApiError } from "../../lib/errors";
import { authenticate } from "../../middleware/auth";
import type { Ports } from "../../ports";
import { graphiqlPage } from "./graphiql";
import { createContext, type GraphQLContext, resolvers, snakeCase } from "./graphql.resolvers";
import { typeDefs } from "./graphql.schema";

/** Refused beyond these: depth, cost, aliases and tokens of one operation; operations per batch. */
export const GRAPHQL_LIMITS = {
  maxDepth: 10,
  maxCost: 5000,
  maxAliases: 15,
  maxTokens: 2000,
  maxBatch: 10,
} as const;

type ServerContext = { hono: Context<AppEnv> };

/**
 * GraphQL over the same services as REST: `POST /v1/gql` (authentication
 * required; batching, introspection, subscriptions over Server-Sent Events), `/v1/graphiql` where
 * `APP_ENV` is not `production`, and `/v1/schema` (SDL, public).
 */
export function createGraphqlRouter(ports: Ports) {
  const production = ports.config.APP_ENV === "production";
  // Yoga's `createSchema` (graphql-tools' `makeExecutableSchema`) would first run the one SDL
  // string through graphql-tools' type-definition merger, which the Worker then carries
  // (~10 KiB gzip); graphql-js builds the same schema from it.
  const schema = addResolversToSchema({ schema: buildSchema(typeDefs), resolvers });
  resolveCamelCaseFromRows(schema);
  const sdl = printSchema(schema);

  const yoga = createYoga<ServerContext, Omit<GraphQLContext, "hono">>({
    schema,
    graphqlEndpoint: "/v1/gql",
    graphiql: false,
    landingPage: false,
    cors: false,
    logging: false,
    // The body-limit middleware enforces MAX_BODY_BYTES before the request gets here.
    maxRequestBodySize: false,
    batching: { limit: GRAPHQL_LIMITS.maxBatch },
    maskedErrors: { maskError: toClientError, isDev: !production },
    context: ({ hono }) => createContext(hono),
    plugins: [
      useReadableRequests(),
      maxDepthPlugin({ n: GRAPHQL_LIMITS.maxDepth }),
      costLimitPlugin({ maxCost: GRAPHQL_LIMITS.maxCost }),
      maxAliasesPlugin({ n: GRAPHQL_LIMITS.maxAliases }),
      maxTokensPlugin({ n: GRAPHQL_LIMITS.maxTokens }),
      useErrorHandler(({ errors, context }) => {
        for (const error of errors) {
          const original = error instanceof GraphQLError ? error.originalError : error;
          if (!original || original instanceof ApiError || original instanceof GraphQLError) {
            continue;
          }
          // Execution errors arrive with the execution's arguments; others with the context.
          const { contextValue } = context as { contextValue?: Partial<ServerContext> };
          const hono = contextValue?.hono ?? (context as Partial<ServerContext>).hono;
          hono?.var.logger.error("graphql resolver failed", { error: original });
        }
      }),
    ],
  });

  const router = createRouter();
  // Yoga's response is rebuilt by Hono, so it carries the headers the middleware set before the
  // route (request id, rate limits, security headers).
  const answer = (response: Response, c: Context<AppEnv>) => c.newResponse(response.body, response);
  router.on(["GET", "POST"], "/gql", async (c) => {
    await authenticate(c);
    if (c.req.method === "GET") return answer(await yoga.fetch(c.req.raw, { hono: c }), c);
    // Read once (within MAX_BODY_BYTES), to count the batch's operations before Yoga runs them.
    const body = await c.req.text();
    await c.get("chargeRateLimit")?.(operationsIn(body) - 1);
    const request = new Request(c.req.raw, { body });
    return answer(await yoga.fetch(request, { hono: c }), c);
  });
  router.get("/graphiql", (c) => {
    if (production) throw new ApiError("not_found", "GraphiQL is not served in production");
    return c.html(graphiqlPage({ endpoint: "/v1/gql", title: "Heimdall GraphQL" }));
  });
  router.get("/schema", (c) => c.text(sdl));
  return router;
}

/**
 * Yoga's request parsing, with every malformed request answered in JSON with a code: a POST in a
 * content type no parser reads is a 415 (Yoga's has no body), and `variables` or `extensions`
 * that are not JSON in a query string or form a 400 (Yoga's `JSON.parse` threw: a 500). Refused
 * before they run: strings Postgres cannot store that `rejectNul` does not see (they failed in
 * the query), and requests whose answer the client would not accept (Yoga ran them, mutations
 * too, and only then answered 406).
 */
function useReadableRequests(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser, endResponse, fetchAPI }) {
      if (!requestParser) {
        const error = {
          message: "Send the operation as JSON, a form, multipart or application/graphql",
          extensions: { code: "UNSUPPORTED_MEDIA_TYPE" },
        };
        endResponse(fetchAPI.Response.json({ errors: [error] }, { status: 415 }));
        return;
      }
      setRequestParser(async (request) => {
        let params: Awaited<ReturnType<typeof requestParser>>;
        try {
          params = await requestParser(request);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
          throw new GraphQLError("The variables and extensions parameters must be JSON", {
            extensions: { code: "BAD_REQUEST", http: { status: 400 } },
          });
        }
        if (params instanceof fetchAPI.Response) return params;
        for (const one of Array.isArray(params) ? params : [params]) {
          if (!storable(one)) {
            throw new GraphQLError("NUL characters and unpaired surrogates are not accepted", {
              extensions: { code: "BAD_REQUEST", http: { status: 400 } },
            });
          }
        }
        // JSON or Server-Sent Events, or also multipart for a single operation.
        const answers = [...JSON_TYPES, SSE];
        if (!Array.isArray(params)) answers.push("multipart/mixed");
        if (!accepts(request, answers)) {
          // No result processor matches, so Yoga answers this with its empty 406.
          throw new GraphQLError("Not acceptable", { extensions: { code: "BAD_REQUEST" } });
        }
        return params;
      });
    },
    // A subscription Yoga cannot stream got its 406 after it had started, and nothing ever
    // ended it (its revocation check ran on, every LIVE_SWEEP_SECONDS).
    onSubscribe({ args, setResultAndStopExecution }) {
      const { request } = args.contextValue as { request?: Request };
      if (request && !accepts(request, [SSE])) {
        const message =
          "Subscriptions are answered as Server-Sent Events: Accept text/event-stream";
        setResultAndStopExecution({
          errors: [
            new GraphQLError(message, {
              extensions: { code: "BAD_REQUEST", http: { status: 406 } },
            }),
          ],
        });
      }
    },
  };
}

/** A NUL in the query, raw or escaped (`\u0000`, `\u{0}`); graphql-js refuses lone surrogates. */
const NUL_IN_QUERY = /\0|\\u0000|\\u\{0+\}/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Whether Postgres can store every string of an operation: `rejectNul` reads only JSON and form
 * bodies and URLs, not multipart, `application/graphql`, nor GraphQL's own escapes. Iterative, so
 * variables nested 100,000 deep are no stack overflow.
 */
function storable(params: GraphQLParams) {
  // Not an object: Yoga refuses it itself.
  if (params === null || typeof params !== "object") return true;
  if (typeof params.query === "string" && NUL_IN_QUERY.test(params.query)) return false;
  const pending: unknown[] = [params.variables, params.extensions, params.operationName];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === "string") {
      if (value.includes("\0") || LONE_SURROGATE.test(value)) return false;
    } else if (value !== null && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) pending.push(key, item);
    }
  }
  return true;
}

const JSON_TYPES = ["application/json", "application/graphql-response+json"];
const SSE = "text/event-stream";

/** Whether the `Accept` header names one of `answers`, as Yoga reads it (UTF-8 only). */
function accepts(request: Request, answers: string[]) {
  const asked = (request.headers.get("accept") || "*/*").replace(/\s/g, "").toLowerCase();
  return asked.split(",").some((accept) => {
    const [type = "", ...params] = accept.split(";");
    if (params.some((p) => p.startsWith("charset=") && p !== "charset=utf-8")) return false;
    const [top, sub] = type.split("/");
    return answers.some((answer) => {
      const [aTop, aSub] = answer.split("/");
      return (top === "*" || top === aTop) && (sub === "*" || sub === aSub);
    });
  });
}

/** How many operations a request body carries: a JSON array is a batch. */
function operationsIn(body: string) {
  if (!body.trimStart().startsWith("[")) return 1;
  try {
    const parsed: unknown = JSON.parse(body);
    return Array.isArray(parsed) ? Math.min(parsed.length, GRAPHQL_LIMITS.maxBatch) || 1 : 1;
  } catch {
    return 1;
  }
}

/**
 * Heimdall's own errors reach the client with their code (`NOT_FOUND`, `FORBIDDEN`,
 * `VALIDATION_ERROR` with `details`); anything else is masked outside development. Errors of
 * the request that carry no code (graphql-js's for a variable of the wrong type, graphql-armor's
 * limits) get `BAD_REQUEST`, so every error has one.
 */
function toClientError(error: unknown, message: string, isDev?: boolean): Error {
  const original = error instanceof GraphQLError ? error.originalError : undefined;
  if (error instanceof GraphQLError && original instanceof ApiError) {
    return new GraphQLError(original.message, {
      nodes: error.nodes,
      path: error.path,
      extensions: {
        code: original.code.toUpperCase(),
        ...(original.options.details ? { details: original.options.details } : {}),
      },
    });
  }
  const masked = maskError(error, message, isDev);
  if (!(masked instanceof GraphQLError) || masked.extensions.code !== undefined) return masked;
  return new GraphQLError(masked.message, {
    nodes: masked.nodes,
    source: masked.source,
    positions: masked.positions,
    path: masked.path,
    originalError: masked.originalError,
    extensions: { ...masked.extensions, code: "BAD_REQUEST" },
  });
}

/** Fields without a resolver read the row's snake_case column (`createdAt` ← `created_at`). */
function resolveCamelCaseFromRows(schema: GraphQLSchema) {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const column = snakeCase(field.name);
      if (field.resolve || column === field.name) continue;
      field.resolve = (source: Record<string, unknown>) => source[field.name] ?? source[column];
    }
  }
}
