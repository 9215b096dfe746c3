import { sql } from "drizzle-orm";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresDatabase } from "../../src/adapters/postgres/database";
import { createRedisLimiter } from "../../src/adapters/redis/limiter";
import { createRedisRevocationStore } from "../../src/adapters/redis/revocations";
import { createUpstashRedis } from "../../src/adapters/upstash/redis";
import type { DatabasePort, Ports } from "../../src/ports";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  type LogEvent,
  migrationsFolder,
} from "../support/app";
import {
  Big,
  bigText,
  encode,
  expectAnswer,
  garbageToken,
  hostileString,
  spiced,
  writeWatch,
} from "../support/fuzz";
import { readJson } from "../support/http";
import { bearer, type Requester } from "../support/identity";
import { createTestDatabase } from "../support/postgres";
import { announceSkip, services } from "../support/services";
import { startUpstashRest, type UpstashRestServer } from "../support/upstash-rest";
import { apiKeysFuzz, seedApiKey } from "./fixtures/api-keys";
import { appsFuzz, seedApps } from "./fixtures/apps";
import { auditFuzz, seedAuditLogId } from "./fixtures/audit";
import { auditReportsFuzz, seedAuditReport } from "./fixtures/audit-reports";
import { bansFuzz, seedBan } from "./fixtures/bans";
import { credentialsFuzz, seedCredential } from "./fixtures/credentials";
import { devicesFuzz, seedDevice } from "./fixtures/devices";
import { gpsFuzz, seedPosition } from "./fixtures/gps";
import { invitesFuzz, seedInvite } from "./fixtures/invites";
import {
  type CapabilityFuzz,
  Deep,
  type Fixture,
  jsonText,
  Raw,
  Ref,
  type RefName,
  ref,
  refNames,
  type Schema,
} from "./fixtures/kit";
import { oauthFuzz, seedOauthClient } from "./fixtures/oauth";
import { platformsFuzz, seedPlatform } from "./fixtures/platforms";
import { rolesFuzz } from "./fixtures/roles";
import { forgedToken, seedServiceToken, seedSpareSession, tokensFuzz } from "./fixtures/tokens";
import { seedSessionId, usersFuzz } from "./fixtures/users";

/**
 * Bad-input fuzz over every operation of the served `/v1/openapi.json`. Requests are
 * generated with fast-check from each operation's schemas (its path and query parameters and
 * body; `undocumented` adds what the document gives in prose only), then mutated: exactly one
 * change to an otherwise valid request, or many at once — wrong types, missing required and
 * extra fields, hostile strings (NUL, emoji, lone surrogates, 100 KB, SQL and template
 * injection, path traversal), bad ids, malformed JSON, deep nesting, wrong content types,
 * oversize bodies — sent with no, garbage, forged, valid (user, reader, API key, service,
 * device, another app's) and admin credentials. No operation is left out.
 *
 * Every answer must be < 500, no request may log an error, every 4xx must be in the error shape
 * with the status of its code and its request id, and a request answered 4xx must write nothing.
 * That is checked for every request, not a sample (`writeWatch`): Postgres's next transaction id
 * tells in one tiny query whether anything at all was written; when it was, every table's rows
 * are counted and the rows the request inserted or updated (by `xmin`) are found, so inserts,
 * deletes and updates all show. The audit events of refusals are the one allowed write.
 *
 * Seeded (`FUZZ_SEED`, default below) and reproducible: the generated requests refer to the
 * fixture symbolically (`ref(device_id)`), so a seed always produces the same requests, on
 * every backend. `FUZZ_RUNS` sets the number of requests per backend. A failure prints the
 * request fast-check shrank it to; the capabilities' `regressions` (./fixtures/) keep those
 * found so far as fixed cases. What the suite knows of each capability's routes (its fixture,
 * the values of its fields, its undocumented input) is in ./fixtures/<capability>.ts.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.FUZZ_RUNS ?? 5000);
/** The fixture is made afresh this often, since the fuzz may delete or revoke parts of it. */
const REFRESH_EVERY = 500;

// ---------------------------------------------------------------------------------------------
// Values the generator uses, resolved when a request is sent (the Ref, Raw and Deep of ./fixtures/kit).

/** A value of the wrong type (or shape) for whatever the field expects. */
const wrongType = fc.constantFrom<unknown>(
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 1,
  [],
  [null],
  {},
  { a: {} },
  "1",
  new Raw("1e999"),
  new Raw("-0"),
  new Raw("123456789012345678901234567890"),
  new Deep(100),
  new Deep(5_000),
  new Deep(100_000),
);

const hostileValue = fc.oneof(hostileString, wrongType);

/** Fields no body should have (mass assignment, prototype pollution, odd names). */
const extraKey = fc.constantFrom(
  "__proto__",
  "constructor",
  "id",
  "app_id",
  "is_admin",
  "password_hash",
  "role",
  "$where",
  "",
  "😀",
);
const hostileKey = fc.oneof(extraKey, spiced, fc.string({ unit: "binary", maxLength: 8 }));

// ---------------------------------------------------------------------------------------------
// Requests generated from the OpenAPI document.

interface Param {
  in: "path" | "query" | "header" | "cookie";
  name: string;
  required?: boolean;
  schema: Schema;
}

interface Operation {
  label: string;
  method: string;
  path: string;
  pathParams: Param[];
  query: Param[];
  body?: { required: boolean; types: string[]; schema: Schema };
  /** The credential the operation is for (a user token, the admin key, a device secret…). */
  credential: CredentialKind;
}

/**
 * What each capability tells the fuzz about its routes (./fixtures/<capability>.ts): the values
 * of path parameters and fields, and the input its document describes in prose only.
 */
const capabilities: CapabilityFuzz[] = [
  appsFuzz,
  usersFuzz,
  rolesFuzz,
  tokensFuzz,
  apiKeysFuzz,
  devicesFuzz,
  gpsFuzz,
  platformsFuzz,
  oauthFuzz,
  credentialsFuzz,
  invitesFuzz,
  bansFuzz,
  auditReportsFuzz,
  auditFuzz,
];
const undocumented: NonNullable<CapabilityFuzz["undocumented"]> = Object.assign(
  {},
  ...capabilities.map((c) => c.undocumented),
);
const hints: Record<string, fc.Arbitrary<unknown>> = Object.assign(
  {},
  ...capabilities.map((c) => c.hints),
);
const pathRefs: Record<string, RefName[]> = Object.assign(
  {},
  ...capabilities.map((c) => c.pathRefs),
);

const httpMethods = ["get", "post", "put", "patch", "delete"];

/** Every operation of the document, with its parameters and body schema. */
function operationsOf(doc: {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: Param[];
        requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
        security?: unknown[];
      }
    >
  >;
}): Operation[] {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const label = `${method.toUpperCase()} ${path}`;
      const params = op.parameters ?? [];
      // Nothing is left out silently: a kind of input the fuzz cannot send fails the suite.
      expect(httpMethods, `${label}: not an HTTP method`).toContain(method);
      expect(
        params.filter((p) => p.in !== "path" && p.in !== "query").map((p) => p.name),
        `${label}: header or cookie parameters`,
      ).toEqual([]);
      const content = op.requestBody?.content ?? {};
      const types = Object.keys(content);
      const extra = undocumented[label];
      const query = params.filter((p) => p.in === "query");
      for (const [name, schema] of Object.entries(extra?.query?.properties ?? {})) {
        query.push({ in: "query", name, schema, required: extra?.query?.required?.includes(name) });
      }
      const bodySchema = extra?.body ?? (types[0] ? content[types[0]]?.schema : undefined);
      ops.push({
        label,
        method: method.toUpperCase(),
        path,
        credential: !op.security?.length
          ? path.startsWith("/v1/gps/")
            ? "device"
            : "none"
          : /^\/v1\/(apps|admin)(\/|$)/.test(path)
            ? "admin"
            : "user",
        pathParams: params.filter((p) => p.in === "path"),
        query,
        ...(bodySchema
          ? {
              body: {
                required: op.requestBody?.required ?? false,
                types: types.length > 0 ? types : ["application/json"],
                schema: bodySchema,
              },
            }
          : {}),
      });
    }
  }
  return ops;
}

/** Arbitraries for one document's schemas. */
function generators(components: Record<string, Schema>) {
  const deref = (schema: Schema): Schema =>
    schema.$ref ? deref(components[schema.$ref.split("/").pop() ?? ""] ?? {}) : schema;

  function conformingString(s: Schema): fc.Arbitrary<unknown> {
    switch (s.format) {
      case "date-time":
        return fc
          .date({
            min: new Date("2026-11-01"),
            max: new Date("2026-11-23T09:59Z"),
            noInvalidDate: true,
          })
          .map((d) => d.toISOString());
      case "email":
        return fc.stringMatching(/^[a-z0-9]{1,12}@[a-z]{1,8}\.test$/);
      case "uri":
        return fc.constantFrom("https://app.example/cb", "http://127.0.0.1:1/idp");
      case "unix":
        return fc.oneof(
          fc.integer({ min: 1_795_420_000, max: 1_795_427_999 }).map(String),
          fc.constantFrom("2026-11-23T09:59:00Z", "1795427940000"),
        );
      case "device-secret":
        return ref("device_secret");
      case "external-id":
        return ref("external_id");
    }
    if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
    const minLength = s.minLength ?? 0;
    return fc.string({
      minLength,
      maxLength: Math.max(minLength, Math.min(s.maxLength ?? 24, 24)),
    });
  }

  /** A value the schema accepts (mostly: hints and formats are plausible, not always valid). */
  function conforming(schema: Schema, key?: string): fc.Arbitrary<unknown> {
    const s = deref(schema);
    const hint = key === undefined ? undefined : hints[key];
    const base = conformingBase(s);
    return hint ? fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: base }) : base;
  }

  function conformingBase(s: Schema): fc.Arbitrary<unknown> {
    if (s.oneOf) return fc.oneof(...s.oneOf.map((choice) => conforming(choice)));
    if (s.enum) return fc.constantFrom(...s.enum);
    const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    if (types.length > 1) return fc.oneof(...types.map((type) => conformingBase({ ...s, type })));
    switch (types[0] ?? (s.properties ? "object" : s.format ? "string" : undefined)) {
      case "null":
        return fc.constant(null);
      case "boolean":
        return fc.boolean();
      case "integer":
        return fc.integer({ min: s.minimum ?? -1_000_000, max: s.maximum ?? 1_000_000 });
      case "number":
        return fc.double({
          min: s.minimum ?? -200,
          max: s.maximum ?? 200,
          noNaN: true,
          noDefaultInfinity: true,
        });
      case "string":
        return conformingString(s);
      case "array":
        return fc.array(conforming(s.items ?? {}), {
          minLength: s.minItems ?? 0,
          maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 3, 3)),
        });
      case "object":
        return objectOf(s, (child, key) => conforming(child, key), false);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  }

  /** An object of the schema's properties; `mutate` also drops required keys and adds others. */
  function objectOf(
    s: Schema,
    field: (schema: Schema, key: string) => fc.Arbitrary<unknown>,
    mutate: boolean,
  ): fc.Arbitrary<unknown> {
    const properties = Object.entries(s.properties ?? {});
    // A free-form object (metadata, attributes: stored as jsonb) gets hostile keys and values
    // of its own when mutated.
    const free =
      properties.length === 0 && s.additionalProperties !== false
        ? fc.dictionary(
            mutate
              ? fc.oneof(fc.string({ maxLength: 8 }), hostileKey)
              : fc.string({ maxLength: 8 }),
            mutate
              ? fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileString, hostileValue)
              : fc.jsonValue({ maxDepth: 2 }),
            { maxKeys: 3 },
          )
        : fc.constant({});
    // Optional properties in one object of three (two of three for those with a hint, the
    // fixture's ids and secrets), so most requests stay close to minimal.
    const required = new Set(s.required ?? []);
    const entries = properties.map(([key, child]) => {
      const entry = field(child, key).map((value): [string, unknown] => [key, value]);
      if (required.has(key)) return entry;
      const [absent, present] = hints[key] ? [1, 2] : [2, 1];
      return fc.oneof(
        { weight: absent, arbitrary: fc.constant(null) },
        { weight: present, arbitrary: entry },
      );
    });
    const base = fc.tuple(free, ...entries).map(([extra, ...list]) => ({
      ...extra,
      ...Object.fromEntries(list.filter((entry) => entry !== null)),
    }));
    if (!mutate) return base;
    return fc
      .tuple(
        base,
        s.required?.length
          ? fc.option(fc.subarray(s.required, { minLength: 1 }), { freq: 4 })
          : fc.constant(null),
        fc.option(fc.array(fc.tuple(hostileKey, hostileValue), { minLength: 1, maxLength: 2 }), {
          freq: 4,
        }),
      )
      .map(([value, drop, extra]) => {
        const entries = Object.entries(value as object).filter(([key]) => !drop?.includes(key));
        return Object.fromEntries([...entries, ...(extra ?? [])]);
      });
  }

  /** A value for the schema with hostile values in about one field of `1 + 10 / rate`. */
  function fuzzed(schema: Schema, rate: number, key?: string): fc.Arbitrary<unknown> {
    if (rate === 0) return conforming(schema, key);
    const s = deref(schema);
    if (s.oneOf) return fc.oneof(...s.oneOf.map((choice) => fuzzed(choice, rate, key)));
    const isObject = s.type === "object" || (s.type === undefined && s.properties);
    const node = isObject
      ? objectOf(s, (child, childKey) => fuzzed(child, rate, childKey), true)
      : s.type === "array"
        ? fc.array(fuzzed(s.items ?? {}, rate), {
            minLength: s.minItems ?? 0,
            maxLength: Math.max(s.minItems ?? 0, 3),
          })
        : conforming(s, key);
    return fc.oneof({ weight: 10, arbitrary: node }, { weight: rate, arbitrary: hostileValue });
  }

  return { conforming, fuzzed };
}

type Piece = Ref | Big | string | { raw: string };

type Body =
  | { kind: "json"; contentType: string | null; value: unknown }
  | { kind: "form"; contentType: string; value: unknown }
  | { kind: "text"; contentType: string | null; text: string | Big };

const credentialKinds = [
  "none",
  "garbage",
  "malformed",
  "forged",
  "admin",
  "user",
  "reader",
  "other",
  "service",
  "api_key",
  "api_key_bearer",
  "device",
  "device_basic",
  "client_basic",
] as const;
type CredentialKind = (typeof credentialKinds)[number];

interface Plan {
  op: string;
  credential: { kind: CredentialKind; garbage: string };
  path: Record<string, Piece>;
  query: Array<[string | Big, unknown]>;
  body: Body | undefined;
}

const badId = fc.oneof(
  hostileString,
  fc.constantFrom<Piece>(
    { raw: "%ff" },
    { raw: "%00" },
    { raw: "..%2f..%2f" },
    { raw: "a%2fb" },
    { raw: "%e2%80%ae" },
    "usr_01JBZZZZZZZZZZZZZZZZZZZZZZ",
    "0",
    "-1",
    new Big("9", 70),
  ),
);

type Key = string | number;
const isPlain = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;

/** Every place in a value: the root, and each member of its objects and arrays. */
function placesOf(value: unknown, at: Key[] = []): Key[][] {
  const inner = Array.isArray(value)
    ? value.flatMap((item, index) => placesOf(item, [...at, index]))
    : isPlain(value)
      ? Object.entries(value).flatMap(([key, item]) => placesOf(item, [...at, key]))
      : [];
  return [at, ...inner];
}

const DROP = Symbol("drop");

/** A copy of `value` with the member at `place` changed (or dropped). */
function changeAt(value: unknown, place: Key[], change: (old: unknown) => unknown): unknown {
  const [head, ...rest] = place;
  if (head === undefined) return change(value);
  const next = (item: unknown) => changeAt(item, rest, change);
  if (Array.isArray(value)) {
    return value.flatMap((item, index) => {
      const changed = index === head ? next(item) : item;
      return changed === DROP ? [] : [changed];
    });
  }
  if (!isPlain(value)) return value;
  return Object.fromEntries(
    Object.entries(value).flatMap(([key, item]) => {
      const changed = key === head ? next(item) : item;
      return changed === DROP ? [] : [[key, changed]];
    }),
  );
}

/** A value with exactly one change: a member replaced by a hostile value, dropped, or added. */
function mutateOnce(value: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      value,
      fc.nat(),
      fc.constantFrom("replace", "replace", "drop", "add"),
      hostileKey,
      hostileValue,
    )
    .map(([original, at, how, key, bad]) => {
      const places = placesOf(original);
      const place = places[at % places.length] ?? [];
      return changeAt(original, place, (old) => {
        if (how === "drop" && place.length > 0) return DROP;
        if (how === "add" && isPlain(old))
          return Object.fromEntries([...Object.entries(old), [key, bad]]);
        return bad;
      });
    });
}

function planArbitrary(ops: Operation[], components: Record<string, Schema>) {
  const { conforming, fuzzed } = generators(components);

  const queryValue = (param: Param, rate: number) =>
    fc.oneof(
      { weight: 10 - Math.min(rate, 5), arbitrary: conforming(param.schema, param.name) },
      { weight: 1 + rate, arbitrary: hostileValue },
      { weight: 1, arbitrary: fc.constantFrom<Piece>({ raw: "%ff" }, { raw: "a&b=c" }) },
    );

  /**
   * Requests for one operation: valid but for exactly one change (the strongest probe of a
   * single check), all valid, or hostile in about one field of 11, 4 or 2 (anything goes).
   */
  const planFor = (op: Operation): fc.Arbitrary<Plan> =>
    fc.oneof(
      { weight: 3, arbitrary: planWithOneChange(op) },
      { weight: 2, arbitrary: planAt(op, 0) },
      { weight: 1, arbitrary: planAt(op, 1) },
      { weight: 1, arbitrary: planAt(op, 3) },
      { weight: 1, arbitrary: planAt(op, 10) },
    );

  /** Path parameters: the fixture's ids, and now and then (`badIds`) a bad one. */
  const pathOf = (op: Operation, badIds: boolean) =>
    fc.record(
      Object.fromEntries(
        op.pathParams.map((p) => {
          const refs = (pathRefs[p.name] ?? []).map((name) => ref(name));
          if (refs.length === 0) return [p.name, badId];
          if (!badIds) return [p.name, fc.oneof(...refs)];
          return [
            p.name,
            fc.oneof({ weight: 3, arbitrary: fc.oneof(...refs) }, { weight: 1, arbitrary: badId }),
          ];
        }),
      ),
    ) as fc.Arbitrary<Record<string, Piece>>;

  /** A valid request with one change in its body, or in its query when it has no body. */
  const planWithOneChange = (op: Operation): fc.Arbitrary<Plan> => {
    const querySchema: Schema = {
      type: "object",
      properties: Object.fromEntries(op.query.map((p) => [p.name, p.schema])),
      required: op.query.filter((p) => p.required).map((p) => p.name),
    };
    const queryValue = conforming(querySchema);
    const query = (op.body ? queryValue : mutateOnce(queryValue)).map((value) =>
      value !== null &&
      typeof value === "object" &&
      !(value instanceof Raw) &&
      !(value instanceof Deep)
        ? Object.entries(value)
        : [["q", value] as [string, unknown]],
    );
    const body: fc.Arbitrary<Body | undefined> = op.body
      ? fc
          .tuple(mutateOnce(conforming(op.body.schema)), fc.constantFrom(...op.body.types))
          .map(([value, type]) =>
            type.includes("form")
              ? { kind: "form", contentType: type, value }
              : { kind: "json", contentType: type, value },
          )
      : fc.constant(undefined);
    return fc.record({
      op: fc.constant(op.label),
      credential: fc.record({ kind: fc.constant(op.credential), garbage: fc.constant("") }),
      path: pathOf(op, false),
      query,
      body,
    });
  };

  const planAt = (op: Operation, rate: number): fc.Arbitrary<Plan> => {
    const path = pathOf(op, true);
    // Declared parameters (a required one is missing now and then), then extra or repeated ones.
    const declared = fc.tuple(
      ...op.query.map((p) =>
        fc.option(
          queryValue(p, rate).map((value): [string, unknown] => [p.name, value]),
          { freq: p.required ? 10 : 2 },
        ),
      ),
    );
    const extra = fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(...op.query.map((p) => p.name), "limit", "x", "__proto__"),
          hostileString,
        ),
        hostileValue,
      ),
      { maxLength: rate > 0 ? 2 : 0 },
    );
    const query = fc
      .tuple(declared, extra)
      .map(([named, more]) => [
        ...named.filter((part): part is [string, unknown] => part !== null),
        ...more,
      ]);
    return fc.record({
      op: fc.constant(op.label),
      credential: fc.record({
        kind: fc.oneof(fc.constant(op.credential), fc.constantFrom(...credentialKinds)),
        garbage: garbageToken,
      }),
      path,
      query,
      body: bodyFor(op, rate),
    });
  };

  function bodyFor(op: Operation, rate: number): fc.Arbitrary<Body | undefined> {
    if (op.method === "GET") return fc.constant(undefined);
    const schema = op.body?.schema ?? { type: "object" };
    const value = fuzzed(schema, rate);
    const wholeHostile = fc.oneof(hostileValue, fc.constantFrom<unknown>([], [{}], "x", 0));
    const malformed = fc.constantFrom<string | Big>(
      "{",
      "}",
      "[",
      '{"a":}',
      "{'a':1}",
      "nul",
      '"unterminated',
      '{"a":1,}',
      "[1,2",
      "\ufeff{}",
      "{}garbage",
      '{"__proto__":{"is_admin":true}}',
      '{"name":"a","name":"b"}',
      "",
      "\u0000",
      '"\\ud800"',
      '{"name":"\\udfff"}',
      '{"a":"\\u0000"}',
      "%%%",
      "a=%ZZ&&=",
      new Big("[", 200_000),
      new Big("x", 1_100_000),
    );
    const jsonTypes = fc.constantFrom(
      "application/json; charset=utf-8",
      "APPLICATION/JSON",
      "application/json; charset=utf-16",
      "application/vnd.api+json",
      "application/merge-patch+json",
    );
    const wrongTypes = fc.constantFrom(
      null,
      "text/plain",
      "application/xml",
      "multipart/form-data; boundary=x",
      "application/octet-stream",
      "application/x-www-form-urlencoded",
      "json",
    );
    const body = fc.oneof(
      {
        weight: 12,
        arbitrary: value.map(
          (v): Body => ({ kind: "json", contentType: "application/json", value: v }),
        ),
      },
      {
        weight: 2,
        arbitrary: wholeHostile.map(
          (v): Body => ({ kind: "json", contentType: "application/json", value: v }),
        ),
      },
      {
        weight: 1,
        arbitrary: fc
          .tuple(jsonTypes, value)
          .map(([t, v]): Body => ({ kind: "json", contentType: t, value: v })),
      },
      {
        weight: 2,
        arbitrary: fc
          .tuple(wrongTypes, value)
          .map(([t, v]): Body => ({ kind: "json", contentType: t, value: v })),
      },
      {
        weight: op.body?.types.includes("application/x-www-form-urlencoded") ? 6 : 1,
        arbitrary: value.map(
          (v): Body => ({
            kind: "form",
            contentType: "application/x-www-form-urlencoded",
            value: v,
          }),
        ),
      },
      {
        weight: 3,
        arbitrary: fc
          .tuple(
            fc.constantFrom("application/json", "application/x-www-form-urlencoded", null),
            malformed,
          )
          .map(([t, text]): Body => ({ kind: "text", contentType: t, text })),
      },
    );
    // Operations without a body get one now and then (wrong content, extra input).
    return op.body
      ? fc.option(body, { freq: op.body.required ? 20 : 4, nil: undefined })
      : fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: body });
  }

  return fc.oneof(...ops.map(planFor));
}

// ---------------------------------------------------------------------------------------------
// Turning a plan into a request.

/** Refs and long strings replaced by their text; keys kept as own properties (`__proto__`). */
function resolve(value: unknown, fixture: Fixture): unknown {
  if (value instanceof Ref) return fixture[value.name];
  if (value instanceof Big) return bigText(value);
  if (value instanceof Raw || value instanceof Deep || value === null) return value;
  if (Array.isArray(value)) return value.map((item) => resolve(item, fixture));
  if (typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, resolve(item, fixture)]),
    );
  }
  return value;
}

/** A resolved value as one URL or form value. */
const scalarText = (value: unknown) => (typeof value === "string" ? value : jsonText(value));

function urlPiece(piece: unknown, fixture: Fixture) {
  if (piece !== null && typeof piece === "object" && "raw" in piece) return String(piece.raw);
  return encode(scalarText(resolve(piece, fixture)));
}

function formText(value: unknown) {
  if (
    value === null ||
    typeof value !== "object" ||
    value instanceof Raw ||
    value instanceof Deep
  ) {
    return scalarText(value);
  }
  return Object.entries(value)
    .map(([key, item]) => `${encode(key)}=${encode(scalarText(item))}`)
    .join("&");
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

function credentialHeaders(
  { kind, garbage }: Plan["credential"],
  f: Fixture,
): Record<string, string> {
  switch (kind) {
    case "none":
      return {};
    case "garbage":
      return bearer(garbage);
    case "malformed": {
      const variants = ["Basic !!!", "Bearer", "Token abc", "Bearer a b", `Bearer ${garbage} x`];
      return { Authorization: variants[garbage.length % variants.length] ?? "" };
    }
    case "forged":
      return bearer(f.forged_token);
    case "admin":
      return adminHeaders;
    case "user":
      return bearer(f.access_token);
    case "reader":
      return bearer(f.reader_token);
    case "other":
      return bearer(f.other_token);
    case "service":
      return bearer(f.service_token);
    case "api_key":
      return { "X-API-Key": f.api_key };
    case "api_key_bearer":
      return bearer(f.api_key);
    case "device":
      return bearer(f.device_secret);
    case "device_basic":
      return { Authorization: basic(f.external_id, f.device_secret) };
    case "client_basic":
      return { Authorization: basic(f.credential_client_id, f.credential_secret) };
  }
}

function requestOf(plan: Plan, op: Operation, f: Fixture) {
  const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) =>
    urlPiece(plan.path[name] ?? "", f),
  );
  const query = plan.query.map(([name, value]) => `${urlPiece(name, f)}=${urlPiece(value, f)}`);
  const url = query.length > 0 ? `${path}?${query.join("&")}` : path;
  const headers: Record<string, string> = { ...credentialHeaders(plan.credential, f) };
  let body: string | undefined;
  const b = plan.body;
  if (b) {
    if (b.contentType) headers["Content-Type"] = b.contentType;
    const value = b.kind === "text" ? b.text : resolve(b.value, f);
    body =
      b.kind === "text"
        ? value instanceof Big
          ? bigText(value)
          : String(value)
        : b.kind === "form"
          ? formText(value)
          : jsonText(value);
  }
  return { url, init: { method: op.method, headers, ...(body === undefined ? {} : { body }) } };
}

// ---------------------------------------------------------------------------------------------
// The fixture: one app with everything the operations name, made through the API.

/** The fixture: one resource of every kind, made through the API in this order. */
async function seedFixture(app: Requester, name: string): Promise<Fixture> {
  const { tenant, refs: apps } = await seedApps(app, name);
  const spare = await seedSpareSession(app, name, tenant);
  const user = bearer(tenant.admin.accessToken);
  const apiKey = await seedApiKey(app, user);
  const device = await seedDevice(app, user);
  const position = await seedPosition(app, device.device_secret);
  const session = await seedSessionId(app, spare);
  const platform = await seedPlatform(app, name);
  const client = await seedOauthClient(app, name);
  const credential = await seedCredential(app, name);
  const service = await seedServiceToken(app, name, {
    client_id: credential.credential_client_id,
    client_secret: credential.credential_secret,
  });
  const invite = await seedInvite(app, name);
  const ban = await seedBan(app);
  const report = await seedAuditReport(app);
  const audit = await seedAuditLogId(app, user);
  const fixture: Fixture = {
    ...apps,
    refresh_token: spare.refreshToken,
    ...session,
    ...apiKey,
    ...device,
    ...position,
    ...platform,
    ...client,
    ...credential,
    ...service,
    ...invite,
    ...ban,
    ...report,
    ...audit,
    forged_token: forgedToken(tenant),
  };
  for (const key of refNames) expect(typeof fixture[key], key).toBe("string");
  return fixture;
}

// ---------------------------------------------------------------------------------------------
// Backends.

interface Opened {
  db: DatabasePort;
  ports: Partial<Ports>;
  clock: ReturnType<typeof createTestClock>;
  close(): Promise<void>;
}

const backends: Array<{ name: string; open(): Promise<Opened> }> = [
  {
    name: "PGlite, in-memory cache",
    async open() {
      const db = await createMemoryDatabase();
      return { db, ports: {}, clock: createTestClock(), close: () => db.close() };
    },
  },
];

if (services.postgres) {
  const serverUrl = services.postgres;
  const redisUrl = services.redis;
  if (!redisUrl)
    announceSkip("fuzz on Postgres with Redis (runs with in-memory cache)", "TEST_REDIS_URL");
  backends.push({
    name: redisUrl ? "Postgres, Redis (Upstash REST)" : "Postgres, in-memory cache",
    async open() {
      const database = await createTestDatabase(serverUrl);
      const db = await createPostgresDatabase({ url: database.url, migrationsFolder });
      const clock = createTestClock();
      let upstash: UpstashRestServer | undefined;
      let ports: Partial<Ports> = {};
      if (redisUrl) {
        upstash = await startUpstashRest({ redisUrl });
        const redis = createUpstashRedis({ url: upstash.url, token: upstash.token });
        const prefix = `heimdall-fuzz:${crypto.randomUUID()}`;
        const revocations = createRedisRevocationStore(redis, clock, {
          prefix: `${prefix}:revoked:`,
        });
        ports = {
          revocations,
          limiter: createRedisLimiter(redis, { prefix: `${prefix}:ratelimit` }),
        };
      }
      return {
        db,
        ports,
        clock,
        async close() {
          await db.close();
          await upstash?.close();
          await database.drop();
        },
      };
    },
  });
} else {
  announceSkip("fuzz on Postgres and Redis", "TEST_DATABASE_URL");
}

// ---------------------------------------------------------------------------------------------

/** The fixed cases of the capabilities, in the order they were found. */
const regressions = [gpsFuzz, oauthFuzz, devicesFuzz, appsFuzz].flatMap((c) => c.regressions ?? []);

describe.each(backends)("bad-input fuzz on $name", (backend) => {
  let opened: Opened;
  let app: Requester;
  let logs: LogEvent[];
  let doc: Parameters<typeof operationsOf>[0] & { components: { schemas: Record<string, Schema> } };
  let fixture: Fixture;
  let generation = 0;
  const freshFixture = async () => {
    generation += 1;
    fixture = await seedFixture(app, `fz-${generation}`);
  };

  beforeAll(async () => {
    opened = await backend.open();
    const test = createTestApp({ db: opened.db, clock: opened.clock, ports: opened.ports });
    app = test.app;
    logs = test.logs;
    doc = await readJson(await app.request("/v1/openapi.json"));
    await freshFixture();
  });
  afterAll(() => opened?.close());

  it("the write watch sees inserts, updates and deletes, not rolled-back work", async () => {
    const watch = await writeWatch(opened.db);
    const conn = opened.db.session().db;
    const before = await watch.snapshot();
    expect((await watch.after(before)).written).toEqual([]);
    await conn.execute(
      sql`update apps set display_name = 'Renamed' where name = ${fixture.app_name}`,
    );
    const updated = await watch.after(before);
    expect(updated.written).toEqual(["apps: 1 rows inserted or updated"]);
    await conn.execute(sql`delete from bans where id = ${fixture.ban_id}`);
    const deleted = await watch.after(updated.snapshot);
    const bans = updated.snapshot.rows.bans!;
    expect(deleted.written).toEqual([`bans: ${bans} → ${bans - 1} rows`]);
    const rolledBack = await conn
      .transaction(async (tx) => {
        await tx.execute(
          sql`update apps set display_name = 'Again' where name = ${fixture.app_name}`,
        );
        tx.rollback();
      })
      .catch((error: unknown) => error);
    expect(rolledBack).toBeInstanceOf(Error);
    const after = await watch.after(deleted.snapshot);
    expect(after.snapshot.xid).toBeGreaterThan(deleted.snapshot.xid);
    expect(after.written).toEqual([]);
    await freshFixture(); // the ban it deleted was the fixture's
  });

  it.each(regressions)("regression: $name", async ({ request, status }) => {
    const watch = await writeWatch(opened.db);
    const before = await watch.snapshot();
    const { path, init } = request(fixture);
    logs.length = 0;
    const res = await app.request(path, init);
    expectAnswer(res, await res.text(), logs, `${init.method} ${path.slice(0, 120)}`);
    expect(res.status).toBe(status);
    if (status >= 400) expect((await watch.after(before)).written).toEqual([]);
  });

  it(`${RUNS} seeded requests over every operation: < 500, errors in shape, rejections write nothing`, async () => {
    const started = performance.now();
    const ops = operationsOf(doc);
    const byLabel = new Map(ops.map((op) => [op.label, op]));
    const watch = await writeWatch(opened.db);
    const statuses = new Map<number, number>();
    const perOp = new Map<string, number>();
    let refusals = 0;
    let rejected = 0;
    let counted = 0;
    let runs = 0;
    let stale = false;
    let before = await watch.snapshot();
    console.log(
      `[fuzz] ${backend.name}: seed ${SEED} (FUZZ_SEED), ${RUNS} requests (FUZZ_RUNS), ${ops.length} operations`,
    );

    const property = fc.asyncProperty(planArbitrary(ops, doc.components.schemas), async (plan) => {
      runs += 1;
      if (stale || runs % REFRESH_EVERY === 0) {
        await freshFixture();
        stale = false;
        before = await watch.snapshot();
      }
      const op = byLabel.get(plan.op)!;
      const { url, init } = requestOf(plan, op, fixture);
      logs.length = 0;
      const res = await app.request(url, init);
      // The whole body first: a streamed answer (an export) is still running until read.
      const text = await res.text();
      const seen = await watch.after(before);
      before = seen.snapshot;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      perOp.set(op.label, (perOp.get(op.label) ?? 0) + 1);
      const what = `${init.method} ${url.slice(0, 200)} (${plan.credential.kind})`;
      expectAnswer(res, text, logs, what);
      if (res.status >= 400) {
        expect(seen.written, `a rejected request wrote: ${what} → ${res.status}`).toEqual([]);
        rejected += 1;
        if (seen.counted) counted += 1;
        if (seen.refused) refusals += 1;
      } else if (op.method !== "GET") {
        // A change may have taken the fixture with it (an admin erased or banned, an app
        // deleted): then the next request gets a new one.
        for (const token of [fixture.access_token, fixture.other_token]) {
          const probe = await app.request("/v1/users/me", { headers: bearer(token) });
          stale ||= probe.status !== 200;
        }
        before = (await watch.after(before)).snapshot;
      }
    });
    await fc.assert(property, { seed: SEED, numRuns: RUNS });

    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const histogram = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`);
    console.log(
      `[fuzz] ${backend.name}: ${runs} requests in ${seconds} s over ${perOp.size}/${ops.length} operations; ` +
        `statuses ${histogram.join(", ")}; ${rejected} rejections checked for writes (${counted} ` +
        `moved the transaction id: rows counted, ${refusals} audited a refusal); ${generation} fixtures`,
    );
    expect(runs).toBeGreaterThanOrEqual(RUNS);
    // Every operation was asked, and not just once or twice.
    const least = Math.floor(RUNS / ops.length / 4);
    expect(ops.filter((op) => (perOp.get(op.label) ?? 0) < least).map((op) => op.label)).toEqual(
      [],
    );
  }, 600_000);
});
