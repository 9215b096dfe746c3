// Heimdall's layers and runtimes as rules. `npm run check:deps` enforces them (it is part of
// `npm run check`, hence of `npm test`); test/dependency-rules.test.ts shows they bite.
//
// Layers, low to high: the pure kit (src/lib), configuration (src/config.ts), the ports
// (src/ports) and the schema (src/db), the services, the HTTP kit (src/http), the middleware,
// the routes; adapters implement the ports. Entries compose all of it and may import anything.
// Type-only imports count: a type pulls its module's layer in just as a value does.

/** Composition roots and tools: they wire the layers together, so no layer rule binds them. */
const ENTRIES =
  "^(src/(app|node|worker)[.]ts$|src/(node|worker)/|party/gps-room[.]ts$|functions/|scripts/|bench/)";
/**
 * Packages and the runtime's own modules. The layer rules are about Heimdall's modules; which
 * packages a layer may use is said by the package and runtime rules.
 */
const OUTSIDE = "node_modules/|cloudflare:";
const CONFIG = "src/config[.]ts$";
const HONO = "^node_modules/(hono|@hono/[^/]+)/";
const DRIZZLE = "^node_modules/drizzle-orm/";

const NODE_ONLY_PACKAGES =
  "^node_modules/(ioredis|pg|pg-[^/]+|@hono/node-server|@sentry/node|ws|@electric-sql/pglite|maxmind|mmdb-lib|nodemailer|@node-rs/argon2[^/]*)/" +
  "|^node_modules/drizzle-orm/(node-postgres|pglite)/";
/** Where Node's builtins and Node-only packages may be imported (test/ too: the benchmarks reuse its support). */
const NODE_CODE =
  "^(src/node[.]ts$|src/node/|src/adapters/(node|postgres|pglite)/|src/adapters/sentry/node[.]ts$|scripts/|bench/|test/)";

const WORKER_ONLY_PACKAGES =
  "^cloudflare:|^node_modules/(partyserver|@sentry/cloudflare|@neondatabase/serverless)/" +
  "|^node_modules/drizzle-orm/neon-[^/]+/";
/** Where the Workers runtime's modules and Worker-only packages may be imported. */
const WORKER_CODE =
  "^(src/worker[.]ts$|src/worker/|party/(?!room[.]ts$)|src/adapters/(cloudflare|neon)/|src/adapters/sentry/cloudflare[.]ts$)";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment:
        "A cycle makes two modules one unit: neither can be understood, tested or moved alone, and " +
        "the order ES modules evaluate in decides which one sees the other half-initialised.",
      from: {},
      to: { circular: true },
    },

    // Layers.
    {
      name: "lib-imports-only-lib",
      severity: "error",
      comment:
        "src/lib is the pure kit every layer may use: it can lean on nothing of Heimdall's above it, " +
        "or it would drag that layer into everything.",
      from: { path: "^src/lib/" },
      to: { pathNot: `^(src/lib/|${OUTSIDE})`, dependencyTypesNot: ["core"] },
    },
    {
      name: "lib-no-hono",
      severity: "error",
      comment:
        "The pure kit runs unchanged under any framework and in tests: no hono, no @hono/* (and, " +
        "by the runtime rules below, no node:* or cloudflare:*).",
      from: { path: "^src/lib/" },
      to: { path: HONO },
    },
    {
      name: "config-imports-only-lib",
      severity: "error",
      comment:
        "Configuration is read by every layer and every entry; it parses settings with the pure kit " +
        "and knows nothing else of Heimdall's.",
      from: { path: `^${CONFIG}` },
      to: { pathNot: `^(src/lib/|${OUTSIDE})`, dependencyTypesNot: ["core"] },
    },
    {
      name: "ports-imports-only-lib-config-db-ports",
      severity: "error",
      comment:
        "Ports are the interfaces services need from the outside world; they are defined in terms " +
        "of the kit, configuration and the schema, never of the code that uses or implements them " +
        "(services, HTTP, middleware, routes, adapters) or of an entry.",
      from: { path: "^src/ports/" },
      to: { pathNot: `^(src/(lib|db|ports)/|${CONFIG}|${OUTSIDE})`, dependencyTypesNot: ["core"] },
    },
    {
      name: "db-imports-only-lib-ports-config-db",
      severity: "error",
      comment:
        "The schema and its query helpers sit beside the ports: services and adapters build on " +
        "them, so they cannot build on services, HTTP, routes or adapters.",
      from: { path: "^src/db/" },
      to: { pathNot: `^(src/(lib|ports|db)/|${CONFIG}|${OUTSIDE})`, dependencyTypesNot: ["core"] },
    },
    {
      name: "services-imports-only-core-below",
      severity: "error",
      comment:
        "Services are Heimdall's behaviour, reached from HTTP, GraphQL, the live room and jobs alike; " +
        "they use the kit, ports, schema, configuration, each other and the live-room protocol " +
        "(party/room.ts), never the HTTP kit, middleware, routes, adapters (ports instead) or an entry.",
      from: { path: "^src/services/" },
      to: {
        pathNot: `^(src/(lib|ports|db|services)/|${CONFIG}|party/room[.]ts$|${OUTSIDE})`,
        dependencyTypesNot: ["core"],
      },
    },
    {
      name: "services-no-hono",
      severity: "error",
      comment:
        "Services do not know they are served over HTTP: no hono, no @hono/* (take plain values, " +
        "throw the kit's errors; the HTTP kit maps them).",
      from: { path: "^src/services/" },
      to: { path: HONO },
    },
    {
      name: "http-imports-only-core-below",
      severity: "error",
      comment:
        "The HTTP kit (router, env, errors, pagination) is what middleware and routes are written " +
        "with; it may use hono and everything below it, never middleware, routes, adapters or an entry.",
      from: { path: "^src/http/" },
      to: {
        pathNot: `^(src/(lib|ports|services|db|http)/|${CONFIG}|${OUTSIDE})`,
        dependencyTypesNot: ["core"],
      },
    },
    {
      name: "middleware-not-to-routes-adapters-entries",
      severity: "error",
      comment:
        "Middleware runs before the routes and knows none of them; it reaches the outside world " +
        "through ports, never an adapter, and never reaches up into an entry.",
      from: { path: "^src/middleware/" },
      to: { path: `^src/(routes|adapters)/|${ENTRIES}` },
    },
    {
      name: "middleware-no-drizzle",
      severity: "error",
      comment: "Middleware asks services, it does not query the database itself.",
      from: { path: "^src/middleware/" },
      to: { path: DRIZZLE },
    },
    {
      name: "routes-not-to-adapters-entries",
      severity: "error",
      comment:
        "Routes reach the outside world through the ports their context carries, so they run " +
        "unchanged on every runtime; only entries choose adapters.",
      from: { path: "^src/routes/" },
      to: { path: `^src/adapters/|${ENTRIES}` },
    },
    {
      name: "routes-no-drizzle",
      severity: "error",
      comment: "Routes translate HTTP to service calls; queries live in services.",
      from: { path: "^src/routes/" },
      to: { path: DRIZZLE },
    },
    {
      name: "routes-capability-not-to-another",
      severity: "error",
      comment:
        "Each folder of src/routes is one capability mounted on its own; what two of them share " +
        "belongs in the HTTP kit or a service, so removing one never breaks another.",
      from: { path: "^src/routes/([^/]+)/" },
      to: { path: "^src/routes/[^/]+/", pathNot: "^src/routes/$1/" },
    },
    {
      name: "adapters-imports-only-lib-ports-db-config",
      severity: "error",
      comment:
        "An adapter implements a port for one runtime or vendor: it sees the port, the kit, the " +
        "schema and configuration, never services, HTTP, middleware, routes, the live room or an " +
        "entry (those depend on ports, which would close a loop through the adapter).",
      from: { path: "^src/adapters/" },
      to: {
        pathNot: `^(src/(lib|ports|db|adapters)/|${CONFIG}|${OUTSIDE})`,
        dependencyTypesNot: ["core"],
      },
    },
    {
      name: "room-imports-only-lib-ports-services",
      severity: "error",
      comment:
        "party/room.ts is the live room's protocol, shared by the Durable Object host and the Node " +
        "hub; it runs on both, so it uses only the kit, ports and services.",
      from: { path: "^party/room[.]ts$" },
      to: { pathNot: `^(src/(lib|ports|services)/|${OUTSIDE})`, dependencyTypesNot: ["core"] },
    },

    // Runtimes.
    {
      name: "node-builtins-only-in-node-code",
      severity: "error",
      comment:
        "node:* builtins exist on Node only (the Worker's nodejs_compat covers some, not all, and " +
        "not the same way): only the Node entry, Node's adapters, scripts and the benchmarks use them.",
      from: { pathNot: NODE_CODE },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "node-packages-only-in-node-code",
      severity: "error",
      comment:
        "These packages need Node (sockets, files, native streams): only the Node entry, Node's " +
        "adapters, scripts and the benchmarks import them, so the Worker bundle never pulls them in.",
      from: { pathNot: NODE_CODE },
      to: { path: NODE_ONLY_PACKAGES },
    },
    {
      name: "worker-modules-only-in-worker-code",
      severity: "error",
      comment:
        "cloudflare:* modules and these packages need the Workers runtime (Durable Objects, its " +
        "SDKs, Neon's edge driver): only the Worker entry, the party host and the Cloudflare/Neon " +
        "adapters import them, so Node never loads them.",
      from: { pathNot: WORKER_CODE },
      to: { path: WORKER_ONLY_PACKAGES },
    },
  ],
  options: {
    // The repo's TypeScript (tsc 7, the Go port) has no JS API for dependency-cruiser to load; swc
    // parses TypeScript, and with tsPreCompilationDeps it keeps the type-only imports.
    parser: "swc",
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    enhancedResolveOptions: {
      // Resolve package subpaths (hono/factory, drizzle-orm/pg-core) through their exports map.
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
  },
};
