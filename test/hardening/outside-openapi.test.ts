import fc from "fast-check";
import {
  buildSchema,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
} from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorStatus } from "../../src/lib/errors";
import type { DatabasePort } from "../../src/ports";
import { adminHeaders, createTestApp, type LogEvent, withExecutionContext } from "../support/app";
import { databaseBackends } from "../support/backends";
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
import { seedApiKey } from "./fixtures/api-keys";
import { seedApps } from "./fixtures/apps";
import { seedDevice } from "./fixtures/devices";
import { seedPosition } from "./fixtures/gps";
import {
  gqlPost,
  graphqlHints,
  graphqlIdHints,
  graphqlRegressions,
  isoDate,
} from "./fixtures/graphql";
import { authorizeForm, authorizeQuery, seedOauthPages } from "./fixtures/oauth";
import {
  type Fixture,
  hostileParam,
  json,
  Raw,
  REDIRECT_URI,
  Ref,
  ref,
  refNames,
  Tampered,
} from "./fixtures/outside-kit";
import { forgedOpenidToken } from "./fixtures/tokens";

/**
 * Bad-input fuzz over the routes outside `/v1/openapi.json`, the half fuzz.test.ts cannot reach:
 * GraphQL (`/v1/gql`, `/v1/schema`, `/v1/graphiql`), the OAuth sign-in and account pages, userinfo, and
 * the documents. The set is computed, `app.routes` minus the document's operations, so a new
 * route outside the document is fuzzed the day it is added: by a generator of its own, or by
 * `anyRoute` (hostile path parameters, query, bodies, methods and credentials), unless
 * `excluded` names it with a reason. The suite fails if a route got too few requests or an
 * exclusion names no route.
 *
 * GraphQL operations are generated from the served SDL (`/v1/schema`): every root field of
 * Query, Mutation and Subscription, with arguments valid, of the wrong type, hostile (the
 * shared strings: NUL, emoji, lone surrogates, 100 KB, SQL and template injection, path
 * traversal), missing or unknown; selections deep past the limit, aliased past it, with
 * unknown fields, fragments and directives; arguments inline or as variables of the right or
 * wrong type; malformed query text; batches; GET, forms, `application/graphql`, multipart,
 * wrong content types and bad JSON; twelve kinds of credentials. Every answer must be < 500 with
 * nothing logged at error level and a JSON body; every GraphQL error must carry
 * `extensions.code` (Heimdall's codes in upper case, or Yoga's for a request it could not
 * parse or validate), never `INTERNAL_SERVER_ERROR`; an answer in the REST error shape (401,
 * 413, NUL…) must be one; and a request whose every operation failed must have written nothing
 * (the write watch of fuzz.test.ts).
 *
 * The pages get hostile query strings, forms (URL-encoded, multipart, broken multipart, JSON),
 * sealed transactions valid, tampered and foreign, wrong methods, and the same credentials:
 * answers < 500, nothing logged as an error, JSON errors in the error shape, HTML only where
 * HTML is served and never with input reflected unescaped, redirects only to the client's
 * registered URI, and a refusal writes nothing.
 *
 * Seeded (`FUZZ_SEED`, default below); `FUZZ_GQL_RUNS` and `FUZZ_PAGE_RUNS` set the requests per
 * backend.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const GQL_RUNS = Number(process.env.FUZZ_GQL_RUNS ?? 2000);
const PAGE_RUNS = Number(process.env.FUZZ_PAGE_RUNS ?? 800);
/** The fixture is made afresh this often, since the fuzz may delete or revoke parts of it. */
const REFRESH_EVERY = 400;

/** Entries of `app.routes` outside the document that are not fuzzed, and why. */
const excluded: Record<string, string> = {
  "ALL /*": "the middleware every request passes through (app.use), not a route",
};
/** Routes with a generator of their own; any other route outside the document gets `anyRoute`. */
const graphqlRoutes = ["GET /v1/gql", "POST /v1/gql"];

const isPlain = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;

/** Refs, long strings and tampered transactions replaced by their text. */
function resolve(value: unknown, f: Fixture): unknown {
  if (value instanceof Ref) return f[value.name];
  if (value instanceof Big) return bigText(value);
  if (value instanceof Tampered) {
    const at = value.at % f.tx.length;
    return f.tx.slice(0, at) + (f.tx[at] === "A" ? "B" : "A") + f.tx.slice(at + 1);
  }
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return value.map((item) => resolve(item, f));
  if (isPlain(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, f)]));
  }
  return value;
}
const textOf = (value: unknown, f: Fixture) => {
  const resolved = resolve(value, f);
  return typeof resolved === "string" ? resolved : JSON.stringify(resolved);
};

// ---------------------------------------------------------------------------------------------
// Credentials.

const credentialKinds = [
  "none",
  "garbage",
  "malformed",
  "forged",
  "admin",
  "user",
  "reader",
  "other",
  "openid",
  "api_key",
  "api_key_bearer",
  "device",
] as const;
type Credential = { kind: (typeof credentialKinds)[number]; garbage: string };

const credential = (weights: Partial<Record<Credential["kind"], number>>) =>
  fc.record({
    kind: fc.oneof(
      ...credentialKinds.map((kind) => ({
        weight: weights[kind] ?? 1,
        arbitrary: fc.constant(kind),
      })),
    ),
    garbage: garbageToken,
  });

function credentialHeaders({ kind, garbage }: Credential, f: Fixture): Record<string, string> {
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
    case "openid":
      return bearer(f.openid_token);
    case "api_key":
      return { "X-API-Key": f.api_key };
    case "api_key_bearer":
      return bearer(f.api_key);
    case "device":
      return bearer(f.device_secret);
  }
}

// ---------------------------------------------------------------------------------------------
// GraphQL operations, generated from the schema.

/** A value the schema does not expect: wrong types, broken literals, variables never declared. */
const wrongLiteral = fc.constantFrom<unknown>(
  null,
  true,
  0,
  -1,
  1.5,
  2 ** 31,
  1e308,
  "1",
  [],
  [null],
  {},
  { a: { b: [1] } },
  new Raw("NOT_AN_ENUM"),
  new Raw("$undeclared"),
  new Raw("1e999"),
  new Raw('"unterminated'),
  new Raw('"""block\u0000"""'),
  new Raw('"\\u0000"'),
  new Raw('"\\u{0}"'),
  new Raw('"\\ud800"'),
  new Raw('"\\u{110000}"'),
  new Raw("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
);
const hostileArg = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: wrongLiteral },
);

/** One argument (or input field, or variable) with its GraphQL type, as a literal or `$name`. */
interface Arg {
  name: string;
  value: unknown;
  /** Passed as this variable, declared with this type, instead of inline. */
  variable?: { name: string; type: string };
}

/** One root field of an operation. */
interface RootField {
  alias?: string;
  name: string;
  args: Arg[];
  directive?: string;
  selection: string;
}

interface GqlOperation {
  type: "query" | "mutation" | "subscription";
  name?: string;
  fields: RootField[];
  /** Replaces the printed text: truncated, spliced with garbage, or garbage. */
  mangle?: { at: number; insert: unknown; cut: boolean };
  /** Replaces the variables the arguments make. */
  variables?: unknown;
  operationName?: unknown;
}

/** How a batch, or one operation, is sent. */
type Envelope =
  | { kind: "json"; contentType: string; accept?: string }
  | { kind: "get"; accept?: string }
  | { kind: "form" }
  | { kind: "graphql-text" }
  | { kind: "multipart"; broken: boolean }
  | { kind: "wrong-type"; contentType: string | null }
  | { kind: "body"; text: unknown };

interface GqlPlan {
  route: string;
  credential: Credential;
  envelope: Envelope;
  operations: GqlOperation[];
  batch: boolean;
}

/**
 * What a request gets wrong. A clean request has none of these, a request with one change
 * exactly one (the sharpest probe of a single check), a wild one any number.
 */
const noises = [
  "credential",
  "envelope",
  "arg",
  "missingArg",
  "unknownArg",
  "variableType",
  "variables",
  "selection",
  "deep",
  "aliases",
  "directive",
  "mangle",
  "operationName",
] as const;
type Noise = Record<(typeof noises)[number], boolean>;
const clean = Object.fromEntries(noises.map((n) => [n, false])) as Noise;
const noise = fc.oneof(
  { weight: 3, arbitrary: fc.constant(clean) },
  { weight: 5, arbitrary: fc.constantFrom(...noises).map((n): Noise => ({ ...clean, [n]: true })) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(...noises.map(() => fc.boolean()))
      .map((flags) => Object.fromEntries(noises.map((n, i) => [n, flags[i]])) as Noise),
  },
);

/** Arbitraries for one schema's operations. */
function graphqlGenerators(schema: GraphQLSchema) {
  const scalarValue = (name: string, key: string): fc.Arbitrary<unknown> => {
    const hint = graphqlHints[key];
    const base = (() => {
      switch (name) {
        case "Int":
          return fc.integer({ min: 1, max: 50 });
        case "Float":
          return fc.double({ min: -90, max: 90, noNaN: true });
        case "Boolean":
          return fc.boolean();
        case "DateTime":
          return isoDate;
        case "JSON":
          return fc.jsonValue({ maxDepth: 2 });
        default:
          return fc.string({ minLength: 1, maxLength: 12 });
      }
    })();
    return hint ? fc.oneof({ weight: 3, arbitrary: hint }, { weight: 1, arbitrary: base }) : base;
  };

  /** A value of `type`; `hostile`, one of its places (or itself) is hostile. */
  function inputValue(
    type: GraphQLInputType,
    key: string,
    hostile: boolean,
  ): fc.Arbitrary<unknown> {
    const inner = isNonNullType(type) ? type.ofType : type;
    if (isListType(inner)) {
      const item = inner.ofType as GraphQLInputType;
      if (!hostile) return fc.array(inputValue(item, key, false), { minLength: 1, maxLength: 3 });
      return fc.oneof(
        hostileArg,
        fc
          .tuple(
            inputValue(item, key, true),
            fc.array(inputValue(item, key, false), { maxLength: 2 }),
          )
          .map(([bad, good]) => [...good, bad]),
      );
    }
    if (isEnumType(inner)) {
      const values = fc.constantFrom(...inner.getValues().map((v) => new Raw(v.name)));
      return hostile ? hostileArg : values;
    }
    if (isInputObjectType(inner)) {
      const fields = Object.values(inner.getFields());
      const entries = (bad: number) =>
        fc.tuple(
          ...fields.map((field, i) => {
            const value = inputValue(field.type, field.name, i === bad).map(
              (v) => [field.name, v] as const,
            );
            return isNonNullType(field.type) || i === bad ? value : fc.option(value, { freq: 2 });
          }),
        );
      const object = (bad: number) =>
        entries(bad).map((list) => Object.fromEntries(list.filter((entry) => entry !== null)));
      if (!hostile) return object(-1);
      return fc.oneof(
        { weight: 1, arbitrary: hostileArg },
        { weight: 4, arbitrary: fc.nat(fields.length - 1).chain(object) },
        {
          weight: 1,
          arbitrary: fc
            .tuple(
              object(-1),
              fc.constantFrom("nope", "__proto__", "id", "appId", "isAdmin"),
              hostileArg,
            )
            .map(([value, name, bad]) => ({ ...value, [name]: bad })),
        },
      );
    }
    return hostile ? hostileArg : scalarValue(inner.name, key);
  }

  const fieldsOf = (type: GraphQLNamedType) =>
    isObjectType(type) ? Object.values(type.getFields()) : [];
  const objectField = (field: GraphQLField<unknown, unknown>) =>
    isObjectType(getNamedType(field.type));

  /** Selections that are not valid: unknown fields and types, undefined fragments and directives. */
  const oddItem = (type: GraphQLNamedType) =>
    fc.constantFrom(
      "nope",
      "__schema { queryType { name } }",
      "... on Nope { id }",
      "...Undefined",
      `${fieldsOf(type)[0]?.name ?? "id"} @nope`,
      `${fieldsOf(type)[0]?.name ?? "id"}(nope: 1)`,
      "a: __typename a: nope",
    );

  /** A selection of `type`'s fields, `depth` levels deep at most; `odd`, with one bad item. */
  const selections = new Map<string, fc.Arbitrary<string>>();
  function selection(type: GraphQLNamedType, depth: number): fc.Arbitrary<string> {
    const key = `${type.name}:${depth}`;
    const known = selections.get(key);
    if (known) return known;
    const fields = fieldsOf(type).filter((field) => depth > 0 || !objectField(field));
    const choices = (fields.length > 0 ? fields : fieldsOf(type)).map((field) =>
      objectField(field) && depth > 0
        ? selection(getNamedType(field.type), depth - 1).map((inner) => `${field.name} ${inner}`)
        : fc.constant(objectField(field) ? `${field.name} { __typename }` : field.name),
    );
    const valid = fc.constantFrom(
      "__typename",
      `... on ${type.name} { __typename }`,
      "x: __typename",
      "__typename @skip(if: true)",
      "__typename @include(if: false)",
    );
    const items = fc.oneof(
      { weight: 8, arbitrary: fc.oneof(...choices) },
      { weight: 1, arbitrary: valid },
    );
    const result = fc
      .uniqueArray(items, { minLength: 1, maxLength: 4 })
      .map((list) => `{ ${list.join(" ")} }`);
    selections.set(key, result);
    return result;
  }
  const oddSelection = (type: GraphQLNamedType) =>
    fc
      .tuple(selection(type, 1), oddItem(type))
      .map(([valid, odd]) => `${valid.slice(0, -1)} ${odd} }`);

  /** A chain through object fields `depth` deep (Device → Position → Device …): past the limit. */
  function chain(type: GraphQLNamedType, depth: number): fc.Arbitrary<string> {
    const objects = fieldsOf(type).filter(objectField);
    if (depth === 0 || objects.length === 0) return fc.constant("{ __typename }");
    return fc
      .constantFrom(...objects)
      .chain((field) =>
        chain(getNamedType(field.type), depth - 1).map((inner) => `{ ${field.name} ${inner} }`),
      );
  }

  const roots = (["query", "mutation", "subscription"] as const).flatMap((type) => {
    const root =
      type === "query"
        ? schema.getQueryType()
        : type === "mutation"
          ? schema.getMutationType()
          : schema.getSubscriptionType();
    return Object.values((root as GraphQLObjectType).getFields()).map((field) => ({
      type,
      field,
    }));
  });

  const argValue = (
    field: GraphQLField<unknown, unknown>,
    arg: GraphQLArgument,
    hostile: boolean,
  ) => {
    const hint = arg.name === "id" || arg.name === "name" ? graphqlIdHints[field.name] : undefined;
    const value = inputValue(arg.type, arg.name, hostile);
    return hint && !hostile
      ? fc.oneof({ weight: 6, arbitrary: hint }, { weight: 1, arbitrary: value })
      : value;
  };

  /** A root field; its arguments, selection and directive as `n` has them. */
  function rootField(field: GraphQLField<unknown, unknown>, n: Noise): fc.Arbitrary<RootField> {
    const returns = getNamedType(field.type);
    const selectionOf = !isObjectType(returns)
      ? fc.constant(n.selection ? "{ id }" : "")
      : n.deep
        ? fc.integer({ min: 9, max: 14 }).chain((d) => chain(returns, d))
        : n.selection
          ? fc.oneof(oddSelection(returns), fc.constant(""))
          : selection(returns, 2);
    const { args: declared } = field;
    // With `arg`, one argument (the first one of a field that has no other) is hostile.
    const hostileAt = n.arg && declared.length > 0 ? fc.nat(declared.length - 1) : fc.constant(-1);
    const args = hostileAt.chain((bad) =>
      fc.tuple(
        ...declared.map((arg, i) => {
          const value = argValue(field, arg, i === bad).map(
            (v): Arg => ({ name: arg.name, value: v }),
          );
          return isNonNullType(arg.type) || i === bad ? value : fc.option(value, { freq: 2 });
        }),
      ),
    );
    const required = declared.filter((arg) => isNonNullType(arg.type)).map((arg) => arg.name);
    return fc
      .record({
        args,
        drop: n.missingArg && required.length > 0 ? fc.constantFrom(...required) : fc.constant(""),
        extra: n.unknownArg
          ? fc.tuple(
              fc.constantFrom("nope", "__proto__", "appId", ...declared.map((a) => a.name)),
              hostileArg,
            )
          : fc.constant(null),
        how: fc.constantFrom("inline", "inline", "variables"),
        wrongType: n.variableType
          ? fc.constantFrom(
              "Int",
              "String!",
              "[ID!]!",
              "Boolean",
              "CreateUserInput",
              "Nope",
              "JSON",
            )
          : fc.constant(null),
        directive: n.directive
          ? fc.constantFrom(
              "@include(if: $nope)",
              "@nope",
              "@skip",
              '@skip(if: "yes")',
              "@include(if: true) @include(if: true)",
            )
          : fc.option(fc.constantFrom("@skip(if: false)", "@include(if: true)"), {
              freq: 10,
              nil: undefined,
            }),
        selection: selectionOf,
      })
      .map(({ args, drop, extra, how, wrongType, directive, selection }) => {
        const list = args.filter((arg): arg is Arg => arg !== null && arg.name !== drop);
        if (extra) list.push({ name: extra[0], value: extra[1] });
        return {
          name: field.name,
          args: list.map((arg, i) => {
            const type = declared.find((a) => a.name === arg.name)?.type;
            // A wrong declared type on the first argument; all of them as variables, or none.
            if (!type || (how === "inline" && !wrongType)) return arg;
            const declaredAs = wrongType && i === 0 ? wrongType : String(type);
            return { ...arg, variable: { name: `v${i}`, type: declaredAs } };
          }),
          ...(directive === undefined ? {} : { directive }),
          selection,
        };
      });
  }

  const byType = (type: GqlOperation["type"]) => roots.filter((root) => root.type === type);
  const someField = (type: GqlOperation["type"], n: Noise) =>
    fc.constantFrom(...byType(type)).chain(({ field }) => rootField(field, n));

  const operation = (type: GqlOperation["type"], n: Noise): fc.Arbitrary<GqlOperation> =>
    fc
      .record({
        name: fc.option(fc.constantFrom("Op", "Fuzz"), { freq: 3, nil: undefined }),
        fields: n.aliases
          ? // Past the alias limit: the same field 16 to 20 times.
            fc
              .tuple(someField(type, n), fc.integer({ min: 16, max: 20 }))
              .map(([f, count]) =>
                Array.from({ length: count }, (_, i) => ({ ...f, alias: `a${i}` })),
              )
          : fc.oneof(
              { weight: 6, arbitrary: someField(type, n).map((f) => [f]) },
              {
                weight: 1,
                arbitrary: fc
                  .array(someField(type, n), { minLength: 2, maxLength: 3 })
                  .map((list) => list.map((f, i) => ({ ...f, alias: `f${i}` }))),
              },
            ),
        mangle: n.mangle
          ? fc.record({
              at: fc.nat(),
              insert: fc.oneof(
                hostileString,
                fc.constantFrom(
                  "{",
                  "}",
                  "(",
                  ")",
                  "$",
                  "@",
                  "...",
                  '"',
                  "#",
                  "query",
                  ",,,",
                  "\\u0000",
                ),
                fc.constantFrom(new Big("{", 20_000), new Big("a ", 3_000), new Big("x", 100_000)),
              ),
              cut: fc.boolean(),
            })
          : fc.constant(undefined),
        variables: n.variables
          ? fc.oneof(
              hostileString,
              fc.constantFrom<unknown>(null, 5, [], [1], "x", { v0: { deep: [[[[[]]]]] } }),
              fc.dictionary(
                fc.constantFrom("v0", "v1", "nope", "__proto__"),
                fc.oneof(hostileArg, fc.jsonValue({ maxDepth: 2 })),
                { minKeys: 1, maxKeys: 3 },
              ),
            )
          : fc.constant(undefined),
        operationName: n.operationName
          ? fc.oneof(fc.constantFrom<unknown>("Nope", 5, null, "", ["Op"]), hostileString)
          : fc.constant(undefined),
      })
      .map(({ name, fields, mangle, variables, operationName }) => ({
        type,
        ...(name === undefined ? {} : { name }),
        fields,
        ...(mangle === undefined ? {} : { mangle }),
        ...(variables === undefined ? {} : { variables }),
        ...(operationName === undefined ? {} : { operationName }),
      }));

  const anyOperation = (n: Noise) =>
    fc.oneof(
      { weight: 6, arbitrary: operation("query", n) },
      { weight: 5, arbitrary: operation("mutation", n) },
      { weight: 1, arbitrary: operation("subscription", n) },
    );

  const malformedBody = fc.constantFrom<unknown>(
    "{",
    "",
    "null",
    "5",
    '"{ me { userId } }"',
    "[]",
    "[1,null]",
    '{"query":5}',
    '{"query":["{ me { userId } }"]}',
    '{"query":"{ me { userId } }","variables":"x"}',
    '{"query":"{ me { userId } }","variables":[1]}',
    '{"query":"{ me { userId } }","extensions":5}',
    '{"query":"{ me { userId } }","operationName":5}',
    '{"query":"{ me { userId } }"',
    '{"__proto__":{"query":"{ me { userId } }"}}',
    '{"query":"{ role(name: \\"\\\\u0000\\") { id } }"}',
    '{"query":"{ me { userId } }","variables":{"a":"\\ud800"}}',
    new Raw(
      `{"query":"{ me { userId } }","variables":{"a":${"[".repeat(5_000)}${"]".repeat(5_000)}}}`,
    ),
    new Big("[", 100_000),
    new Big("a", 1_100_000),
  );
  const validEnvelope = (type: GqlOperation["type"]) =>
    fc.oneof(
      {
        weight: 10,
        arbitrary: fc
          .option(fc.constantFrom("application/json", "application/graphql-response+json", "*/*"), {
            nil: undefined,
          })
          .map(
            (accept): Envelope => ({
              kind: "json",
              contentType: "application/json",
              ...(accept ? { accept } : {}),
            }),
          ),
      },
      {
        weight: 1,
        arbitrary: fc
          .constantFrom("application/json; charset=utf-8", "application/graphql+json")
          .map((contentType): Envelope => ({ kind: "json", contentType })),
      },
      // Mutations over GET are refused (405): only queries are sent that way when valid.
      { weight: type === "query" ? 3 : 0, arbitrary: fc.constant<Envelope>({ kind: "get" }) },
      { weight: 1, arbitrary: fc.constant<Envelope>({ kind: "form" }) },
      { weight: 1, arbitrary: fc.constant<Envelope>({ kind: "graphql-text" }) },
      { weight: 1, arbitrary: fc.constant<Envelope>({ kind: "multipart", broken: false }) },
    );
  const badEnvelope = fc.oneof(
    { weight: 2, arbitrary: fc.constant<Envelope>({ kind: "get" }) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom("application/xml", "multipart/mixed", "text/event-stream", "text/html")
        .map((accept): Envelope => ({ kind: "json", contentType: "application/json", accept })),
    },
    { weight: 1, arbitrary: fc.constant<Envelope>({ kind: "multipart", broken: true }) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          null,
          "text/plain",
          "application/xml",
          "application/octet-stream",
          "json",
          "application/json; charset=utf-16",
        )
        .map((contentType): Envelope => ({ kind: "wrong-type", contentType })),
    },
    { weight: 3, arbitrary: malformedBody.map((text): Envelope => ({ kind: "body", text })) },
  );

  const plan = (n: Noise) =>
    fc
      .record({
        credential: n.credential
          ? credential({ user: 0 })
          : credential(
              Object.fromEntries(
                credentialKinds.map((k) => [k, k === "user" ? 8 : k.startsWith("api_key") ? 2 : 0]),
              ),
            ),
        operations: fc.oneof(
          { weight: 5, arbitrary: anyOperation(n).map((op) => [op]) },
          {
            weight: 1,
            arbitrary: fc.array(anyOperation(n), { minLength: 2, maxLength: n.envelope ? 12 : 4 }),
          },
        ),
      })
      .chain(({ credential, operations }) =>
        (n.envelope ? badEnvelope : validEnvelope(operations[0]!.type)).map((envelope): GqlPlan => {
          // Only a JSON body carries a batch; other envelopes send the first operation.
          const batch = envelope.kind === "json" && operations.length > 1;
          return {
            route: envelope.kind === "get" ? "GET /v1/gql" : "POST /v1/gql",
            credential,
            envelope,
            batch,
            operations: batch ? operations : operations.slice(0, 1),
          };
        }),
      );

  return noise.chain(plan);
}

/** A value as a GraphQL literal: JSON's strings and numbers, bare enum names and raw text. */
function literal(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "1e999";
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(literal).join(", ")}]`;
  return `{${Object.entries(value)
    .map(([key, item]) => `${key}: ${literal(item)}`)
    .join(", ")}}`;
}

/** A literal's value as a variable takes it: enum names as strings. */
function variableValue(value: unknown): unknown {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return value.map(variableValue);
  if (isPlain(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, variableValue(v)]));
  }
  return value;
}

/** The operation's text and variables, with the fixture's values. */
function printOperation(op: GqlOperation, f: Fixture) {
  const variables: Record<string, unknown> = {};
  const declarations: string[] = [];
  const fields = op.fields.map((field) => {
    const args = field.args.map((arg) => {
      const value = resolve(arg.value, f);
      if (!arg.variable) return `${arg.name}: ${literal(value)}`;
      declarations.push(`$${arg.variable.name}: ${arg.variable.type}`);
      variables[arg.variable.name] = variableValue(value);
      return `${arg.name}: $${arg.variable.name}`;
    });
    return [
      field.alias ? `${field.alias}: ${field.name}` : field.name,
      args.length > 0 ? `(${args.join(", ")})` : "",
      field.directive ? ` ${field.directive}` : "",
      field.selection ? ` ${field.selection}` : "",
    ].join("");
  });
  const signature = [
    op.type,
    op.name ? ` ${op.name}` : "",
    declarations.length > 0 ? `(${[...new Set(declarations)].join(", ")})` : "",
  ].join("");
  let text = `${signature} { ${fields.join(" ")} }`;
  if (op.mangle) {
    const at = op.mangle.at % (text.length + 1);
    const insert = textOf(op.mangle.insert, f);
    text = op.mangle.cut ? text.slice(0, at) + insert : text.slice(0, at) + insert + text.slice(at);
  }
  const vars = op.variables === undefined ? variables : resolve(op.variables, f);
  return {
    query: text,
    variables: vars,
    ...(op.operationName === undefined ? {} : { operationName: resolve(op.operationName, f) }),
    /** The response keys of its root fields, to tell which of them failed. */
    keys: op.fields.map((field) => field.alias ?? field.name),
  };
}

function graphqlRequest(plan: GqlPlan, f: Fixture) {
  const printed = plan.operations.map((op) => printOperation(op, f));
  const first = printed[0]!;
  const payload = ({ keys: _keys, ...p }: (typeof printed)[number]) => p;
  const headers: Record<string, string> = { ...credentialHeaders(plan.credential, f) };
  const e = plan.envelope;
  if ("accept" in e && e.accept) headers.Accept = e.accept;
  let url = "/v1/gql";
  let method = "POST";
  let body: string | FormData | undefined;
  switch (e.kind) {
    case "json":
      headers["Content-Type"] = e.contentType;
      body = json(plan.batch ? printed.map(payload) : payload(first));
      break;
    case "get": {
      method = "GET";
      const params: string[] = [`query=${encode(first.query)}`];
      if (Object.keys(first.variables ?? {}).length > 0 || typeof first.variables !== "object") {
        params.push(
          `variables=${encode(typeof first.variables === "string" ? first.variables : json(first.variables))}`,
        );
      }
      if (first.operationName !== undefined)
        params.push(`operationName=${encode(String(first.operationName))}`);
      url = `/v1/gql?${params.join("&")}`;
      break;
    }
    case "form":
      headers["Content-Type"] = "application/x-www-form-urlencoded";
      body = `query=${encode(first.query)}&variables=${encode(json(first.variables))}`;
      break;
    case "graphql-text":
      headers["Content-Type"] = "application/graphql";
      body = first.query;
      break;
    case "multipart":
      if (e.broken) {
        headers["Content-Type"] = "multipart/form-data; boundary=x";
        body = `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${json(payload(first))}`;
      } else {
        const form = new FormData();
        form.set("operations", json(payload(first)));
        form.set("map", "{}");
        body = form;
      }
      break;
    case "wrong-type":
      if (e.contentType) headers["Content-Type"] = e.contentType;
      body = json(payload(first));
      break;
    case "body":
      headers["Content-Type"] = "application/json";
      body = textOf(e.text, f);
      break;
  }
  return {
    url,
    init: { method, headers, ...(body === undefined ? {} : { body }) },
    printed,
    accept: headers.Accept,
  };
}

// ---------------------------------------------------------------------------------------------
// What a GraphQL answer must be.

/** Codes a GraphQL error may carry: Heimdall's in upper case, and Yoga's for requests it refused. */
const graphqlCodes = new Set([
  ...Object.keys(errorStatus)
    .filter((code) => code !== "internal_error")
    .map((code) => code.toUpperCase()),
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "OPERATION_RESOLUTION_FAILURE",
  // graphql-tools' for a subscription's variable of the wrong type.
  "BAD_USER_INPUT",
]);

interface GraphqlResult {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; path?: unknown[]; extensions?: { code?: unknown } }>;
}

/** The results of an answer: its JSON (one result, or a batch's), or its Server-Sent Events. */
function resultsOf(res: Response, text: string, what: string): GraphqlResult[] {
  const type = res.headers.get("content-type") ?? "";
  if (type.startsWith("text/event-stream")) {
    return text
      .split("\n")
      .filter((line) => line.startsWith("data: "))
      .map((line) => JSON.parse(line.slice(6)));
  }
  if (type.startsWith("multipart/mixed")) {
    return text
      .split(/\r\n\r\n/)
      .filter((part) => part.trimStart().startsWith("{"))
      .map((part) => JSON.parse(part.slice(0, part.lastIndexOf("}") + 1)));
  }
  expect(type, `not JSON: ${what}`).toMatch(/^application\/(graphql-response\+)?json/);
  const body = JSON.parse(text);
  return Array.isArray(body) ? body : [body];
}

/**
 * Checks a GraphQL answer; whether every operation it carried failed (so nothing may have been
 * written): an answer in the REST error shape, a result without `data`, or one whose every root
 * field's resolver failed (an error at exactly its path).
 */
function expectGraphqlAnswer(
  res: Response,
  text: string,
  logs: LogEvent[],
  what: string,
  keys: string[][],
  accept: string | undefined,
): boolean {
  expect(res.status, what).toBeLessThan(500);
  const errors = logs.filter((event) => event.level === "error").map((event) => event.message);
  expect(errors, `logged an error: ${what}`).toEqual([]);
  if (res.status === 406 && text === "") {
    // The client accepts no JSON, and nothing else it accepts can carry the answer (a batch
    // cannot stream): an empty body, as HTTP has it.
    expect(accept ?? "*/*", what).not.toMatch(/json|\*\/\*/);
    return true;
  }
  expect(text, `no body: ${what}`).not.toBe("");
  expect(text, `a stack trace: ${what}`).not.toMatch(/\bat \S+ \(|Failed query|"stack"/);
  if (text.startsWith('{"error":')) {
    expectAnswer(res, text, logs, what);
    return true;
  }
  const results = resultsOf(res, text, what);
  let failed = true;
  results.forEach((result, index) => {
    for (const error of result.errors ?? []) {
      expect(typeof error.message, what).toBe("string");
      const code = error.extensions?.code;
      expect(graphqlCodes.has(String(code)), `an error with code ${code}: ${what}`).toBe(true);
    }
    if (!result.errors?.length) {
      failed = false;
      return;
    }
    if (result.data === undefined) return;
    const rootFailed = (key: string) =>
      result.errors?.some((error) => error.path?.length === 1 && error.path[0] === key);
    if (!(keys[index] ?? []).every(rootFailed)) failed = false;
  });
  return failed && results.length > 0;
}

/** The body of an answer; a stream (a subscription) is read for a moment, then cancelled. */
async function bodyOf(res: Response, abort: AbortController) {
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) return res.text();
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  // A live subscription streams until its request ends: as a client that hangs up.
  const deadline = setTimeout(() => abort.abort(), 30);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // Ended at the deadline: what came so far is the answer.
  } finally {
    clearTimeout(deadline);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// The pages and every other route outside the document.

interface PagePlan {
  route: string;
  method: string;
  credential: Credential;
  path: Record<string, unknown>;
  query: Array<[unknown, unknown]>;
  body?: {
    type: "form" | "multipart" | "json" | "text";
    contentType?: string | null;
    value: unknown;
  };
}

const appName = fc.oneof(
  { weight: 6, arbitrary: ref("app_name") },
  { weight: 1, arbitrary: ref("other_app_name") },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      "nope",
      new Raw("..%2f..%2f"),
      new Raw("%ff"),
      new Big("a", 300),
    ),
  },
  { weight: 1, arbitrary: hostileParam },
);
const bodyKinds = (value: fc.Arbitrary<unknown>, formWeight: number) =>
  fc.oneof(
    { weight: formWeight, arbitrary: value.map((v) => ({ type: "form" as const, value: v })) },
    { weight: 1, arbitrary: value.map((v) => ({ type: "multipart" as const, value: v })) },
    { weight: 1, arbitrary: value.map((v) => ({ type: "json" as const, value: v })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            null,
            "text/plain",
            "multipart/form-data; boundary=x",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
            "application/json",
          ),
          fc.oneof(
            hostileString,
            fc.constantFrom<unknown>("garbage", "{", "tx=%ff&email=%", "--x\r\n\r\n"),
          ),
        )
        .map(([contentType, v]) => ({ type: "text" as const, contentType, value: v })),
    },
  );

const wrongMethods = ["PUT", "PATCH", "DELETE", "POST", "GET", "OPTIONS", "HEAD"];

/** Any route outside the document: hostile path parameters, query, body and credentials. */
function anyRoute(route: string): fc.Arbitrary<PagePlan> {
  const [method = "GET", path = ""] = route.split(" ");
  const params = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  return fc.record({
    route: fc.constant(route),
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constant(method === "ALL" ? "GET" : method) },
      { weight: 1, arbitrary: fc.constantFrom(...wrongMethods) },
    ),
    credential: credential({ user: 2 }),
    path: fc.record(
      Object.fromEntries(params.map((p) => [p, p === "app_name" ? appName : hostileParam])),
    ),
    query: fc.array(
      fc.tuple(
        fc.oneof(fc.constantFrom("q", "page", "query", "__proto__", "redirect"), spiced),
        hostileParam,
      ),
      { maxLength: 3 },
    ),
    body: fc.option(
      bodyKinds(
        fc.dictionary(fc.constantFrom("a", "query", "__proto__"), hostileParam, { maxKeys: 3 }),
        1,
      ),
      { freq: 4, nil: undefined },
    ),
  });
}

function pageGenerators(routes: string[]) {
  const generators: Record<string, fc.Arbitrary<PagePlan>> = {
    "GET /v1/apps/:app_name/oauth/authorize": fc.record({
      route: fc.constant("GET /v1/apps/:app_name/oauth/authorize"),
      method: fc.constant("GET"),
      credential: credential({ none: 6 }),
      path: fc.record({ app_name: appName }),
      query: authorizeQuery,
    }),
    "POST /v1/apps/:app_name/oauth/authorize": fc.record({
      route: fc.constant("POST /v1/apps/:app_name/oauth/authorize"),
      method: fc.constant("POST"),
      credential: credential({ none: 6 }),
      path: fc.record({ app_name: appName }),
      query: fc.constant([]),
      body: bodyKinds(authorizeForm, 8),
    }),
  };
  for (const method of ["GET", "POST"]) {
    const route = `${method} /v1/apps/:app_name/oauth/userinfo`;
    generators[route] = fc.record({
      route: fc.constant(route),
      method: fc.constant(method),
      credential: credential({ openid: 6, user: 2 }),
      path: fc.record({ app_name: appName }),
      query: fc.array(
        fc.tuple(
          fc.constantFrom("access_token", "scope", "claims"),
          fc.oneof(ref("openid_token"), hostileParam),
        ),
        { maxLength: 2 },
      ),
      ...(method === "POST"
        ? {
            body: fc.option(
              bodyKinds(
                fc.record(
                  { access_token: fc.oneof(ref("openid_token"), hostileParam) },
                  { requiredKeys: [] },
                ),
                2,
              ),
              { nil: undefined },
            ),
          }
        : {}),
    });
  }
  return fc.oneof(
    ...routes.map((route) => ({
      weight: generators[route] ? 4 : 1,
      arbitrary: generators[route] ?? anyRoute(route),
    })),
  );
}

function pageRequest(plan: PagePlan, f: Fixture) {
  const [, template = ""] = plan.route.split(" ");
  const piece = (value: unknown) => (value instanceof Raw ? value.text : encode(textOf(value, f)));
  const path = template.replace(/:(\w+)/g, (_, name: string) => piece(plan.path[name] ?? ""));
  const query = plan.query.map(([key, value]) => `${piece(key)}=${piece(value)}`);
  const url = query.length > 0 ? `${path}?${query.join("&")}` : path;
  const headers: Record<string, string> = { ...credentialHeaders(plan.credential, f) };
  let body: string | FormData | undefined;
  const b = plan.body;
  if (b) {
    const value = resolve(b.value, f);
    const entries = isPlain(value)
      ? Object.entries(value).map(([k, v]) => [k, textOf(v, f)] as const)
      : [];
    switch (b.type) {
      case "form":
        headers["Content-Type"] = "application/x-www-form-urlencoded";
        body = entries.map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&");
        break;
      case "multipart": {
        const form = new FormData();
        for (const [k, v] of entries) form.append(k, v);
        body = form;
        break;
      }
      case "json":
        headers["Content-Type"] = "application/json";
        body = json(value);
        break;
      case "text":
        if (b.contentType) headers["Content-Type"] = b.contentType;
        body = textOf(value, f);
        break;
    }
  }
  const inputs = [
    ...Object.values(plan.path),
    ...plan.query.flat(),
    ...(b ? Object.values(isPlain(b.value) ? b.value : { v: b.value }) : []),
  ].map((value) => textOf(value, f));
  const hasBody = body !== undefined && plan.method !== "GET" && plan.method !== "HEAD";
  return { url, init: { method: plan.method, headers, ...(hasBody ? { body } : {}) }, inputs };
}

/** The pages Heimdall renders itself: the OAuth sign-in and the hosted account pages. */
const hostedPage = (route: string) =>
  route.includes("/oauth/authorize") || route.includes("/pages/");

/**
 * A page's answer: < 500, nothing logged as an error; errors in JSON in the error shape, or, on
 * a hosted page, HTML that shows no input unescaped; redirects to the registered URI only.
 * Whether it refused (so it must have written nothing).
 */
function expectPageAnswer(
  res: Response,
  text: string,
  logs: LogEvent[],
  what: string,
  inputs: string[],
  route: string,
  method: string,
) {
  const type = res.headers.get("content-type") ?? "";
  if (method === "HEAD") {
    // No body to check: the status and the log.
    expect(res.status, what).toBeLessThan(500);
    expect(text, what).toBe("");
    expect(
      logs.filter((e) => e.level === "error").map((e) => e.message),
      what,
    ).toEqual([]);
    return res.status >= 400;
  }
  // The hosted pages (the OAuth sign-in, the account pages) show their refusals as pages.
  if (type.startsWith("text/html")) {
    expect(res.status < 400 || hostedPage(route), `an HTML error: ${what}`).toBe(true);
    expect(res.status, what).toBeLessThan(500);
    expect(
      logs.filter((e) => e.level === "error").map((e) => e.message),
      `logged an error: ${what}`,
    ).toEqual([]);
    if (hostedPage(route)) expect(text, what).not.toMatch(/<script/i);
    for (const input of inputs) {
      if (input.length >= 4 && /[<>"]/.test(input)) {
        expect(text.includes(input), `reflected unescaped: ${input.slice(0, 80)} in ${what}`).toBe(
          false,
        );
      }
    }
    return res.status >= 400;
  }
  expectAnswer(res, text, logs, what);
  if (res.status >= 300 && res.status < 400) {
    const location = res.headers.get("location") ?? "";
    expect(location.startsWith(`${REDIRECT_URI}?`), `redirected to ${location}: ${what}`).toBe(
      true,
    );
    return new URL(location).searchParams.has("error");
  }
  return res.status >= 400;
}

// ---------------------------------------------------------------------------------------------
// The fixture, made through the API.

/** The fixture: one resource of every kind the routes outside the document reach. */
async function seedFixture(app: Requester, name: string): Promise<Fixture> {
  const { tenant, other } = await seedApps(app, name);
  const user = bearer(tenant.admin.accessToken);
  const apiKey = await seedApiKey(app, user);
  const device = await deviceOf(app, user);
  const oauth = await seedOauthPages(app, name, tenant, other);
  const fixture: Fixture = {
    app_name: name,
    other_app_name: other.app.name,
    admin_id: tenant.admin.id,
    reader_id: tenant.reader.id,
    other_user_id: other.reader.id,
    admin_email: tenant.admin.email,
    reader_email: tenant.reader.email,
    access_token: tenant.admin.accessToken,
    reader_token: tenant.reader.accessToken,
    other_token: other.admin.accessToken,
    openid_token: oauth.openid_token,
    ...apiKey,
    ...device,
    role_name: tenant.role.name,
    client_id: oauth.client_id,
    granted_client_id: oauth.granted_client_id,
    other_client_id: oauth.other_client_id,
    tx: oauth.tx,
    tx_signed_in: oauth.tx_signed_in,
    other_tx: oauth.other_tx,
    forged_token: forgedOpenidToken(tenant),
  };
  for (const key of refNames) expect(fixture[key], key).toMatch(/\S/);
  return fixture;
}

/**
 * After a request that changed things: whether the fixture's tokens still work (if not, it is
 * made afresh), with its API key and device made again when the fuzz revoked or deleted them.
 */
async function repairFixture(app: Requester, f: Fixture) {
  const works = async (headers: Record<string, string>, query: string) => {
    const res = await app.request("/v1/gql", {
      method: "POST",
      headers: { ...headers, "Content-Type": "application/json" },
      body: json({ query }),
    });
    return res.status === 200 && !(await readJson(res)).errors;
  };
  const user = bearer(f.access_token);
  if (!(await works(user, "{ me { userId } }"))) return false;
  if (!(await works(bearer(f.other_token), "{ me { userId } }"))) return false;
  try {
    if (!(await works({ "X-API-Key": f.api_key }, "{ me { apiKeyId } }"))) {
      Object.assign(f, await seedApiKey(app, user));
    }
    if (!(await works(user, `{ device(id: "${f.device_id}") { id } }`))) {
      Object.assign(f, await deviceOf(app, user));
    }
  } catch {
    return false; // the admin lost the permission: a fresh fixture
  }
  return true;
}

/** A device with one position. */
async function deviceOf(app: Requester, headers: Record<string, string>) {
  const { device_id, device_secret } = await seedDevice(app, headers);
  return { device_id, device_secret, ...(await seedPosition(app, device_secret)) };
}

/** `METHOD path` of every route `app.routes` lists that the document has no operation for. */
function outsideRoutes(
  routes: Array<{ method: string; path: string }>,
  doc: { paths: Record<string, object> },
) {
  const documented = new Set(
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map(
        (method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ":$1")}`,
      ),
    ),
  );
  return [...new Set(routes.map((r) => `${r.method} ${r.path}`))]
    .filter((key) => !documented.has(key))
    .sort();
}

const bump = <K>(counts: Map<K, number>, key: K) => counts.set(key, (counts.get(key) ?? 0) + 1);
const histogram = (counts: Map<unknown, number>) =>
  [...counts]
    .sort(([a], [b]) => String(a).localeCompare(String(b), "en", { numeric: true }))
    .map(([key, n]) => `${key}: ${n}`)
    .join(", ");

describe.each(databaseBackends("the fuzz of routes outside the OpenAPI document"))(
  "routes outside the OpenAPI document, fuzzed on $name",
  (backend) => {
    let db: DatabasePort;
    let dispose: () => Promise<void>;
    let app: Requester;
    let settle: () => Promise<void>;
    let logs: LogEvent[];
    let fixture: Fixture;
    let routes: string[];
    let schema: GraphQLSchema;
    let generation = 0;
    let started = 0;
    // The clock stands still, as in fuzz.test.ts: API keys' `last_used_at` is written (after the
    // answer) once a minute, which would land in a later request's watch. Each fixture has new
    // accounts, so the sign-in form's lockouts end with their fixture.
    const watchWrites = async () => {
      const watch = await writeWatch(db);
      return {
        snapshot: async () => {
          await settle();
          return watch.snapshot();
        },
        after: async (before: Parameters<typeof watch.after>[0]) => {
          await settle();
          return watch.after(before);
        },
      };
    };
    const freshFixture = async () => {
      generation += 1;
      fixture = await seedFixture(app, `oo-${generation}`);
    };

    beforeAll(async () => {
      started = performance.now();
      ({ db, dispose } = await backend.open());
      const test = createTestApp({ db });
      // What a request leaves for after its answer (an e-mail's delivery, its audit event) is
      // awaited before the writes are counted, so it is never put down to a later request.
      const served = withExecutionContext(test.app);
      app = served;
      settle = served.afterResponses;
      logs = test.logs;
      routes = outsideRoutes(
        test.app.routes,
        await readJson(await app.request("/v1/openapi.json")),
      );
      schema = buildSchema(await (await app.request("/v1/schema")).text());
      await freshFixture();
    });
    afterAll(async () => {
      console.log(
        `[fuzz-outside] ${backend.name}: ${((performance.now() - started) / 1000).toFixed(1)} s in all`,
      );
      await dispose?.();
    });

    it("fuzzes every route outside the document, or excludes it with a reason", () => {
      const fuzzed = routes.filter((route) => !(route in excluded));
      expect(
        Object.keys(excluded).filter((route) => !routes.includes(route)),
        "stale exclusions",
      ).toEqual([]);
      expect(fuzzed).toEqual(expect.arrayContaining(graphqlRoutes));
      expect(fuzzed.length).toBeGreaterThan(graphqlRoutes.length);
      console.log(
        `[fuzz-outside] ${backend.name}: ${fuzzed.length} routes outside the document: ${fuzzed.join(", ")}`,
      );
    });

    it("tells a request whose every operation failed from one that wrote, partly or wholly", async () => {
      const watch = await watchWrites();
      const ask = async (query: string, keys: string[]) => {
        const before = await watch.snapshot();
        const { path, init } = gqlPost(fixture, { query });
        logs.length = 0;
        const res = await app.request(path, init);
        const failed = expectGraphqlAnswer(res, await res.text(), logs, query, [keys], undefined);
        return { failed, written: (await watch.after(before)).written.length > 0 };
      };
      const create = (name: string) => `createRole(input: {name: "${name}"}) { id }`;
      expect(await ask(`mutation { ${create("control")} }`, ["createRole"])).toEqual({
        failed: false,
        written: true,
      });
      // Both root fields are non-null: one error nulls all of `data`, yet `a` wrote.
      expect(
        await ask(`mutation { a: ${create("control-2")} b: deleteRole(name: "nope") }`, ["a", "b"]),
      ).toEqual({ failed: false, written: true });
      expect(await ask('mutation { deleteRole(name: "nope") }', ["deleteRole"])).toEqual({
        failed: true,
        written: false,
      });
    });

    it.each(graphqlRegressions)("regression: $name", async ({ request, status, code }) => {
      const watch = await watchWrites();
      const before = await watch.snapshot();
      const { path, init } = request(fixture);
      logs.length = 0;
      const res = await app.request(path, init);
      const text = await res.text();
      const what = `${init.method} ${path.slice(0, 120)}`;
      const failed = path.startsWith("/v1/gql")
        ? expectGraphqlAnswer(
            res,
            text,
            logs,
            what,
            [[]],
            new Headers(init.headers).get("accept") ?? undefined,
          )
        : expectPageAnswer(res, text, logs, what, [], path, init.method ?? "GET");
      expect(res.status, text).toBe(status);
      if (code) expect(text).toContain(`"code":"${code}"`);
      else expect(text).toBe("");
      if (failed) expect((await watch.after(before)).written).toEqual([]);
    });

    it(`${GQL_RUNS} seeded GraphQL requests: < 500, JSON, every error coded, failures write nothing`, async () => {
      const t0 = performance.now();
      const watch = await watchWrites();
      const statuses = new Map<number, number>();
      const perRoute = new Map<string, number>();
      const perField = new Map<string, number>();
      const codes = new Map<string, number>();
      let failures = 0;
      let runs = 0;
      let stale = false;
      let before = await watch.snapshot();
      const property = fc.asyncProperty(graphqlGenerators(schema), async (plan) => {
        runs += 1;
        if (stale || runs % REFRESH_EVERY === 0) {
          await freshFixture();
          stale = false;
          before = await watch.snapshot();
        }
        const { url, init, printed, accept } = graphqlRequest(plan, fixture);
        const abort = new AbortController();
        logs.length = 0;
        const res = await app.request(url, { ...init, signal: abort.signal });
        const text = await bodyOf(res, abort);
        const seen = await watch.after(before);
        before = seen.snapshot;
        bump(statuses, res.status);
        bump(perRoute, plan.route);
        for (const op of plan.operations) {
          for (const field of op.fields) bump(perField, `${op.type}.${field.name}`);
        }
        for (const match of text.matchAll(/"code":"([A-Z_]+)"/g)) bump(codes, match[1]!);
        const sent =
          typeof init.body === "string" ? init.body : printed.map((p) => p.query).join(" | ");
        const what = `${init.method} ${url.slice(0, 200)} ${JSON.stringify(sent.slice(0, 600))} (${plan.credential.kind}, ${plan.envelope.kind})`;
        const failed = expectGraphqlAnswer(
          res,
          text,
          logs,
          what,
          printed.map((p) => p.keys),
          accept,
        );
        if (failed) {
          failures += 1;
          expect(
            seen.written,
            `a failed request wrote: ${what} → ${res.status} ${text.slice(0, 300)}`,
          ).toEqual([]);
        } else if (plan.operations.some((op) => op.type === "mutation")) {
          stale ||= !(await repairFixture(app, fixture));
          before = (await watch.after(before)).snapshot;
        }
      });
      await fc.assert(property, { seed: SEED, numRuns: GQL_RUNS });

      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      const fields = [
        schema.getQueryType(),
        schema.getMutationType(),
        schema.getSubscriptionType(),
      ].flatMap((root, i) =>
        Object.keys((root as GraphQLObjectType).getFields()).map(
          (name) => `${["query", "mutation", "subscription"][i]}.${name}`,
        ),
      );
      console.log(
        `[fuzz-outside] ${backend.name}: ${runs} GraphQL requests in ${seconds} s (seed ${SEED}); ` +
          `${histogram(perRoute)}; statuses ${histogram(statuses)}; ${failures} failed entirely, checked for writes; ` +
          `error codes ${histogram(codes)}; ${perField.size}/${fields.length} root fields; ${generation} fixtures`,
      );
      expect(runs).toBeGreaterThanOrEqual(GQL_RUNS);
      // Both routes and every root field of the schema were asked, and not just once or twice.
      expect(graphqlRoutes.filter((route) => (perRoute.get(route) ?? 0) < GQL_RUNS / 20)).toEqual(
        [],
      );
      expect(fields.filter((name) => (perField.get(name) ?? 0) < 10)).toEqual([]);
    });

    it(`${PAGE_RUNS} seeded requests to the pages and the other routes: < 500, refusals write nothing`, async () => {
      const t0 = performance.now();
      const fuzzed = routes.filter(
        (route) => !(route in excluded) && !graphqlRoutes.includes(route),
      );
      const watch = await watchWrites();
      const statuses = new Map<string, number>();
      const perRoute = new Map<string, number>();
      let refusals = 0;
      let runs = 0;
      let stale = false;
      let before = await watch.snapshot();
      const property = fc.asyncProperty(pageGenerators(fuzzed), async (plan) => {
        runs += 1;
        if (stale || runs % REFRESH_EVERY === 0) {
          await freshFixture();
          stale = false;
          before = await watch.snapshot();
        }
        const { url, init, inputs } = pageRequest(plan, fixture);
        logs.length = 0;
        const res = await app.request(url, init);
        const text = await res.text();
        const seen = await watch.after(before);
        before = seen.snapshot;
        const type = (res.headers.get("content-type") ?? "none").split(";")[0];
        bump(statuses, `${res.status} ${type}`);
        bump(perRoute, plan.route);
        const sent = typeof init.body === "string" ? init.body.slice(0, 300) : "";
        const what = `${init.method} ${url.slice(0, 200)} ${JSON.stringify(sent)} (${plan.credential.kind})`;
        const refused = expectPageAnswer(res, text, logs, what, inputs, plan.route, plan.method);
        if (refused) {
          refusals += 1;
          expect(seen.written, `a refusal wrote: ${what} → ${res.status}`).toEqual([]);
        } else if (init.method === "POST") {
          stale ||= !(await repairFixture(app, fixture));
          before = (await watch.after(before)).snapshot;
        }
      });
      await fc.assert(property, { seed: SEED, numRuns: PAGE_RUNS });

      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      console.log(
        `[fuzz-outside] ${backend.name}: ${runs} page requests in ${seconds} s (seed ${SEED}); ${histogram(perRoute)}; ` +
          `statuses ${histogram(statuses)}; ${refusals} refusals checked for writes; ${generation} fixtures`,
      );
      expect(runs).toBeGreaterThanOrEqual(PAGE_RUNS);
      const least = Math.floor(PAGE_RUNS / fuzzed.length / 8);
      expect(fuzzed.filter((route) => (perRoute.get(route) ?? 0) < least)).toEqual([]);
    });
  },
);
