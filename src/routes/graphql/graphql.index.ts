import { costLimitPlugin } from "@escape.tech/graphql-armor-cost-limit";
import { maxAliasesPlugin } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthPlugin } from "@escape.tech/graphql-armor-max-depth";
import { maxTokensPlugin } from "@escape.tech/graphql-armor-max-tokens";
import { GraphQLError, type GraphQLSchema, isObjectType, printSchema } from "graphql";
import { createSchema, createYoga, maskError, renderGraphiQL, useErrorHandler } from "graphql-yoga";
import type { Context } from "hono";
import type { AppEnv } from "../../app-env";
import { ApiError } from "../../lib/errors";
import { createRouter } from "../../lib/router";
import { authenticate } from "../../middleware/auth";
import type { Ports } from "../../ports";
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
 * GraphQL over the same services as REST (seed 000, 001): `POST /v1/gql` (authentication
 * required; batching, introspection, subscriptions over Server-Sent Events), `/v1/graphiql` where
 * `APP_ENV` is not `production`, and `/v1/schema` (SDL, public).
 */
export function createGraphqlRouter(ports: Ports) {
  const production = ports.config.APP_ENV === "production";
  const schema = createSchema<ServerContext & GraphQLContext>({ typeDefs, resolvers });
  resolveCamelCaseFromRows(schema);
  const sdl = printSchema(schema);

  const yoga = createYoga<ServerContext, Omit<GraphQLContext, "hono">>({
    schema,
    graphqlEndpoint: "/v1/gql",
    graphiql: false,
    landingPage: false,
    cors: false,
    logging: false,
    // Hono's bodyLimit enforces MAX_BODY_BYTES before the request gets here.
    maxRequestBodySize: false,
    batching: { limit: GRAPHQL_LIMITS.maxBatch },
    maskedErrors: { maskError: toClientError, isDev: !production },
    context: ({ hono }) => createContext(hono),
    plugins: [
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
  router.on(["GET", "POST"], "/gql", async (c) => {
    await authenticate(c);
    if (c.req.method === "GET") return yoga.fetch(c.req.raw, { hono: c });
    // Read once (within MAX_BODY_BYTES), to count the batch's operations before Yoga runs them.
    const body = await c.req.text();
    await c.var.chargeRateLimit?.(operationsIn(body) - 1);
    const request = new Request(c.req.raw, { body });
    return yoga.fetch(request, { hono: c });
  });
  router.get("/graphiql", (c) => {
    if (production) throw new ApiError("not_found", "GraphiQL is not served in production");
    return c.html(renderGraphiQL({ endpoint: "/v1/gql", title: "Heimdall GraphQL" }));
  });
  router.get("/schema", (c) => c.text(sdl));
  return router;
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
 * `VALIDATION_ERROR` with `details`); anything else is masked outside development.
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
  return maskError(error, message, isDev);
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
