import { buildClientSchema, getIntrospectionQuery, graphql, printSchema } from "graphql";
import { createSchema } from "graphql-yoga";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../src/adapters/system-clock";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { GRAPHQL_LIMITS } from "../src/routes/graphql/graphql.index";
import { resolvers } from "../src/routes/graphql/graphql.resolvers";
import { typeDefs } from "../src/routes/graphql/graphql.schema";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, signIn, type Tenant } from "./support/identity";
import { createObservedRealtime } from "./support/realtime";
import { listen } from "./support/server";
import { until } from "./support/wait";

let db: DatabasePort;
let app: App;
let tenant: Tenant;
const rooms = createObservedRealtime();

beforeAll(async () => {
  db = await createMemoryDatabase();
  app = createTestApp({ db, clock: systemClock, ports: { realtime: rooms.realtime } }).app;
  tenant = await createTenant(app, "graph");
});
afterAll(() => db.close());

/** One GraphQL operation (or a batch) as JSON over `POST /v1/gql`. */
async function gql(token: string | undefined, body: unknown, target: Pick<App, "request"> = app) {
  return target.request("/v1/gql", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(token ? bearer(token) : {}) },
    body: JSON.stringify(body),
  });
}

async function data(token: string, query: string, variables?: Record<string, unknown>) {
  const res = await gql(token, { query, variables });
  const body = await readJson(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
  return body.data;
}

describe("GraphQL at /v1/gql", () => {
  it("answers `me` for a user and for an API key", async () => {
    const me = "{ me { userId apiKeyId roles permissions isSuperAdmin } }";
    expect((await data(tenant.admin.accessToken, me)).me).toEqual({
      userId: tenant.admin.id,
      apiKeyId: null,
      roles: ["admin"],
      permissions: ["*:*"],
      isSuperAdmin: true,
    });
    const key = (
      await readJson(
        await send(app, "POST", "/v1/apps/graph/api-keys", {
          body: { name: "gql", role: "api-read-only" },
          headers: adminHeaders,
        }),
      )
    ).data;
    const viaKey = (await data(key.key, me)).me;
    expect(viaKey).toMatchObject({ userId: null, apiKeyId: key.id, isSuperAdmin: false });
    expect(viaKey.permissions).toEqual(["*:read"]);
  });

  it("refuses an unauthenticated request with 401 in the error shape", async () => {
    await expectError(await gql(undefined, { query: "{ me { userId } }" }), 401, "unauthorized");
    await expectError(await gql("pk_forged", { query: "{ me { userId } }" }), 401, "unauthorized");
  });

  it("serves an introspection whose client schema is the SDL at /v1/schema", async () => {
    const sdl = await (await app.request("/v1/schema")).text();
    expect(sdl).toContain("type Query");
    const introspection = await data(tenant.reader.accessToken, getIntrospectionQuery());
    expect(printSchema(buildClientSchema(introspection))).toBe(sdl);
  });

  it("serves the schema Yoga's createSchema builds from the same type definitions", async () => {
    const yogas = createSchema({ typeDefs, resolvers });
    const sdl = await (await app.request("/v1/schema")).text();
    expect(sdl).toBe(printSchema(yogas));
    const full = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
    });
    const served = await data(tenant.reader.accessToken, full);
    expect(served).toEqual((await graphql({ schema: yogas, source: full })).data);
  });

  it("checks the same permissions as REST, with the error code in extensions", async () => {
    const res = await gql(tenant.reader.accessToken, { query: "{ users { data { id } } }" });
    const body = await readJson(res);
    expect(body.data).toBeNull();
    expect(body.errors[0]).toMatchObject({
      message: "Missing permission users:read",
      path: ["users"],
      extensions: { code: "FORBIDDEN" },
    });
    const invalid = await readJson(
      await gql(tenant.admin.accessToken, {
        query: `mutation { createUser(input: {email: "not-an-email", password: "x"}) { id } }`,
      }),
    );
    expect(invalid.errors[0].extensions).toMatchObject({
      code: "VALIDATION_ERROR",
      details: [{ field: "input.email" }],
    });
  });

  it("writes through the same services: users, roles, devices, positions, with batched lookups", async () => {
    const created = await data(
      tenant.admin.accessToken,
      `mutation($input: CreateUserInput!) { createUser(input: $input) { id email roles createdAt } }`,
      {
        input: { email: "grace@graph.test", password: "correct horse battery", roles: ["reader"] },
      },
    );
    expect(created.createUser).toMatchObject({ email: "grace@graph.test", roles: ["reader"] });
    const rest = await send(app, "GET", `/v1/users/${created.createUser.id}`, {
      headers: bearer(tenant.admin.accessToken),
    });
    expect((await readJson(rest)).data.created_at).toBe(created.createUser.createdAt);

    const devices = [];
    for (const name of ["one", "two"]) {
      const { createDevice } = await data(
        tenant.admin.accessToken,
        `mutation($name: String!) { createDevice(input: {name: $name}) { device { id name } secret } }`,
        { name },
      );
      expect(createDevice.secret).toMatch(/^dk_/);
      devices.push(createDevice.device);
    }
    const posted = await data(
      tenant.admin.accessToken,
      `mutation($points: [PointInput!]!) { postPositions(points: $points) {
        stored duplicates rejected { index } positions { id deviceId latitude } } }`,
      {
        points: devices.map((device, i) => ({
          deviceId: device.id,
          timestamp: `2025-11-22T10:0${i}:00Z`,
          latitude: 10 + i,
          longitude: 20,
        })),
      },
    );
    expect(posted.postPositions).toMatchObject({ stored: 2, duplicates: 0, rejected: [] });
    const listed = await data(
      tenant.admin.accessToken,
      `{ devices(limit: 10) { pagination { total hasMore } data { id currentPosition { latitude device { name } } } } }`,
    );
    expect(listed.devices.pagination).toEqual({ total: 2, hasMore: false });
    expect(
      listed.devices.data.map((d: { currentPosition: { latitude: number } }) => d.currentPosition),
    ).toEqual([
      { latitude: 10, device: { name: "one" } },
      { latitude: 11, device: { name: "two" } },
    ]);
    const stored = await readJson(
      await send(app, "GET", `/v1/gps?device_id=${devices[0].id}`, {
        headers: bearer(tenant.admin.accessToken),
      }),
    );
    expect(stored.data).toHaveLength(1);
  });

  it("refuses a query deeper than the limit and a batch larger than the limit", async () => {
    let deep = "id";
    for (let i = 0; i < GRAPHQL_LIMITS.maxDepth; i++) {
      deep = `device { currentPosition { ${deep} } }`;
    }
    const tooDeep = await readJson(
      await gql(tenant.admin.accessToken, { query: `{ currentPositions { ${deep} } }` }),
    );
    expect(tooDeep.data).toBeUndefined();
    expect(tooDeep.errors[0].message).toMatch(/depth/i);

    const operation = { query: "{ me { userId } }" };
    const withinLimit = await gql(
      tenant.admin.accessToken,
      Array.from({ length: GRAPHQL_LIMITS.maxBatch }, () => operation),
    );
    expect(withinLimit.status).toBe(200);
    expect(await readJson(withinLimit)).toHaveLength(GRAPHQL_LIMITS.maxBatch);
    const oversize = await gql(
      tenant.admin.accessToken,
      Array.from({ length: GRAPHQL_LIMITS.maxBatch + 1 }, () => operation),
    );
    expect(oversize.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(await readJson(oversize))).toMatch(/batch/i);
  });

  it("charges each operation of a batch to the caller's rate limit", async () => {
    const limited = createTestApp({
      db,
      clock: systemClock,
      env: { RATE_LIMIT_ENABLED: "true", RATE_LIMIT_DEFAULT_PER_MINUTE: "6" },
    }).app;
    const batch = (n: number) => Array.from({ length: n }, () => ({ query: "{ me { userId } }" }));
    const first = await gql(tenant.reader.accessToken, batch(5), limited);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-remaining")).toBe("1");
    await expectError(await gql(tenant.reader.accessToken, batch(3), limited), 429, "rate_limited");
  });

  it("serves GraphiQL outside production only, and the SDL without authentication", async () => {
    const graphiql = await app.request("/v1/graphiql");
    expect(graphiql.status).toBe(200);
    expect(await graphiql.text()).toContain("/v1/gql");
    const production = createTestApp({ db, env: { APP_ENV: "production" } }).app;
    await expectError(await production.request("/v1/graphiql"), 404, "not_found");
    expect((await production.request("/v1/schema")).status).toBe(200);
  });

  it("masks unexpected errors in production, and logs them", async () => {
    const failing = createTestApp({
      db,
      clock: systemClock,
      env: { APP_ENV: "production" },
      ports: {
        realtime: {
          publish: async () => {},
          subscribe: () => {
            throw new Error("redis at 10.0.0.7:6379 refused the connection");
          },
        },
      },
    });
    const res = await failing.app.request("/v1/gql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        ...bearer(tenant.admin.accessToken),
      },
      body: JSON.stringify({ query: "subscription { positions { id } }" }),
    });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(text).toContain("Unexpected error.");
    expect(text).not.toContain("10.0.0.7");
    expect(
      failing.logs.some((e) => e.message === "graphql resolver failed" && e.level === "error"),
    ).toBe(true);
  });
});

describe("GraphQL subscriptions over Server-Sent Events", () => {
  it("streams a position posted over REST to a subscriber", async () => {
    const server = await listen(app);
    const abort = new AbortController();
    const listeningBefore = rooms.listening();
    try {
      const device = (
        await readJson(
          await send(app, "POST", "/v1/devices", {
            body: { name: "live" },
            headers: bearer(tenant.admin.accessToken),
          }),
        )
      ).data;
      const res = await fetch(`${server.url}/v1/gql`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          ...bearer(tenant.admin.accessToken),
        },
        body: JSON.stringify({
          query: `subscription($id: ID) { positions(deviceId: $id) { id deviceId latitude } }`,
          variables: { id: device.id },
        }),
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      await until(() => rooms.listening() > listeningBefore, {
        message: "the subscription joining its room",
      });
      const posted = await send(app, "POST", "/v1/gps", {
        body: { timestamp: "2025-11-22T12:00:00Z", latitude: 48.1, longitude: 11.5 },
        headers: bearer(device.secret),
      });
      expect(posted.status).toBe(201);
      const stored = (await readJson(posted)).data;
      let text = "";
      const decoder = new TextDecoder();
      while (!text.includes("event: next")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      const line = text.split("\n").find((l) => l.startsWith("data: "));
      expect(JSON.parse(line?.slice(6) ?? "{}")).toEqual({
        data: { positions: { id: stored.id, deviceId: device.id, latitude: 48.1 } },
      });
    } finally {
      abort.abort();
      await server.close();
    }
  });

  it("ends a subscription whose token is revoked, at the next sweep", async () => {
    const sweeping = createTestApp({ db, clock: systemClock, env: { LIVE_SWEEP_SECONDS: "1" } });
    const server = await listen(sweeping.app);
    try {
      const tokens = await signIn(sweeping.app, "graph", tenant.admin.email);
      const res = await fetch(`${server.url}/v1/gql`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "text/event-stream",
          ...bearer(tokens.accessToken),
        },
        body: JSON.stringify({ query: "subscription { positions { id } }" }),
      });
      expect(res.status).toBe(200);
      const revoked = await send(sweeping.app, "POST", "/v1/apps/graph/tokens/revoke", {
        body: { token: tokens.accessToken },
      });
      expect(revoked.status).toBe(200);
      const revokedAt = Date.now();
      const text = await res.text(); // the stream must end by itself
      const endedMs = Date.now() - revokedAt;
      expect(endedMs).toBeLessThan(2500);
      const data = text.split("\n").find((line) => line.startsWith("data: {"));
      expect(JSON.parse(data?.slice(6) ?? "{}")).toMatchObject({
        errors: [{ extensions: { code: "UNAUTHORIZED" } }],
      });
      expect(text).toContain("event: complete");
    } finally {
      await server.close();
    }
  });
});
