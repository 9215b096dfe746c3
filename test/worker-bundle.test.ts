import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { unstable_startWorker } from "wrangler";
import { z } from "zod";
import { aggregateChecks as zodAggregateChecks } from "../node_modules/zod/v4/core/json-schema-processors.js";
import { LRUCache } from "../src/worker/aliases/lru-cache";
import { compile } from "../src/worker/aliases/zod-compile";
import { aggregateChecks, stringProcessor } from "../src/worker/aliases/zod-json-schema-processors";
import { createToJSONSchemaMethod } from "../src/worker/aliases/zod-to-json-schema";

/**
 * What the Worker bundle is made of, from the metafile of the build `wrangler deploy` makes:
 * no Node-only package, one copy of graphql and of @graphql-tools/utils, of zod's locales
 * English only, zod's compiler without its code generator and no JSON Schema reader, no landing
 * page for graphql-yoga, @upstash/ratelimit's ES build without its analytics, otpauth's build
 * for node:crypto, and Heimdall's own LRU in place of lru-cache (wrangler.toml's `[alias]`;
 * docs/architecture.md, "The Worker bundle").
 */
// No download of Cloudflare's request metadata for the Worker started below (loopback only).
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

let out: string;
let inputs: string[];
let importsOf: Record<string, { imports: Array<{ path: string }> }>;
let bundled: string;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), "heimdall-bundle-"));
  const wrangler = join("node_modules", "wrangler", "bin", "wrangler.js");
  await promisify(execFile)(
    process.execPath,
    [wrangler, "deploy", "--dry-run", "--outdir", out, "--metafile", join(out, "meta.json")],
    { env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8"));
  const [file, worker] =
    Object.entries(meta.outputs as Record<string, { inputs: object }>).find(
      ([, output]) => Object.keys(output.inputs).length > 0,
    ) ?? [];
  inputs = Object.keys(worker?.inputs ?? {});
  importsOf = meta.inputs;
  bundled = file ? readFileSync(file, "utf8") : "";
}, 120_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

const packageOf = (input: string) => input.match(/.*node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1];

/** The bundled modules that import `path`. */
const importersOf = (path: string) =>
  Object.entries(importsOf)
    .filter(([, { imports }]) => imports.some((imported) => imported.path === path))
    .map(([importer]) => importer);

describe("the Worker bundle", () => {
  it("holds the Worker's own code and no Node-only package", () => {
    expect(inputs).toContain("src/worker.ts");
    const packages = new Set(inputs.map(packageOf));
    for (const nodeOnly of [
      "nodemailer",
      "maxmind",
      "ioredis",
      "pg",
      "@electric-sql/pglite",
      "@sentry/node",
      "@hono/node-server",
      "ws",
      "@node-rs/argon2",
    ]) {
      expect(packages, nodeOnly).not.toContain(nodeOnly);
    }
  });

  it("holds graphql and @graphql-tools/utils once, graphql as its ES build only", () => {
    const graphql = inputs.filter((input) => packageOf(input) === "graphql");
    expect(graphql.length).toBeGreaterThan(50);
    expect(graphql.filter((input) => !input.endsWith(".mjs"))).toEqual([]);
    expect(new Set(graphql.map((input) => input.replace(/\/graphql\/.*/, ""))).size).toBe(1);
    const utils = inputs.filter((input) => packageOf(input) === "@graphql-tools/utils");
    expect(utils.length).toBeGreaterThan(0);
    expect(
      new Set(utils.map((input) => input.replace(/\/@graphql-tools\/utils\/.*/, ""))).size,
    ).toBe(1);
  });

  it("holds no type-definition merger of graphql-tools: the schema is built by graphql-js", () => {
    expect(inputs.filter((input) => packageOf(input) === "@graphql-tools/merge")).toEqual([]);
    expect(inputs).toContain("node_modules/@graphql-tools/schema/esm/addResolversToSchema.js");
  });

  it("holds zod's English locale and no other", () => {
    const locales = inputs.filter((input) => /node_modules\/zod\/v4\/locales\//.test(input));
    expect(locales).toEqual(["node_modules/zod/v4/locales/en.js"]);
    expect(inputs).toContain("src/worker/aliases/zod-locales.ts");
  });

  it("holds zod's compiler as Workers can run it: no code generator, nothing built with new Function", () => {
    expect(inputs).toContain("src/worker/aliases/zod-compile.ts");
    // The alias replaces every `./compile.js` in the bundle: only zod's core may import it.
    expect(importersOf("src/worker/aliases/zod-compile.ts")).toEqual([
      "node_modules/zod/v4/core/index.js",
    ]);
    expect(bundled).not.toContain("new Function");
  });

  it("holds no JSON Schema reader for zod, and no module that calls one", () => {
    expect(inputs).not.toContain("node_modules/zod/v4/classic/from-json-schema.js");
    expect(importersOf("src/worker/aliases/zod-from-json-schema.ts")).toEqual([
      "node_modules/zod/v4/classic/external.js",
    ]);
    const calling = inputs.filter((input) =>
      /\bfromJSONSchema\s*\(/.test(readFileSync(input, "utf8")),
    );
    expect(calling).toEqual([]);
  });

  it("holds no JSON Schema writer for zod, and no module that asks zod for a JSON Schema", () => {
    expect(inputs).not.toContain("node_modules/zod/v4/core/to-json-schema.js");
    expect(importersOf("src/worker/aliases/zod-to-json-schema.ts").sort()).toEqual([
      "node_modules/zod/v4/classic/schemas.js",
      "node_modules/zod/v4/core/index.js",
      "node_modules/zod/v4/core/json-schema-generator.js",
      "node_modules/zod/v4/core/json-schema-processors.js",
      "src/worker/aliases/zod-json-schema-processors.ts",
    ]);
    expect(importersOf("src/worker/aliases/zod-json-schema-processors.ts").sort()).toEqual([
      "node_modules/zod/v4/classic/external.js",
      "node_modules/zod/v4/classic/schemas.js",
      "node_modules/zod/v4/core/index.js",
      "node_modules/zod/v4/core/json-schema-generator.js",
    ]);
    const asking = inputs.filter(
      (input) =>
        !input.includes("node_modules/zod/") &&
        !input.startsWith("src/worker/aliases/") &&
        /\btoJSONSchema\s*\(|JSONSchemaGenerator|\bjsonSchema\s*\.\s*(?:input|output)\b/.test(
          readFileSync(input, "utf8"),
        ),
    );
    expect(asking).toEqual([]);
  });

  it("holds no catalogue of drizzle's column builders, which only a table of callback columns takes", () => {
    expect(inputs).not.toContain("node_modules/drizzle-orm/pg-core/columns/all.js");
    expect(importersOf("src/worker/aliases/drizzle-column-builders.ts")).toEqual([
      "node_modules/drizzle-orm/pg-core/table.js",
    ]);
  });

  it("holds no landing page for graphql-yoga, which Heimdall's Yoga never shows", () => {
    expect(inputs).not.toContain("node_modules/graphql-yoga/esm/landing-page-html.js");
    expect(importersOf("src/worker/aliases/yoga-landing-page.ts")).toEqual([
      "node_modules/graphql-yoga/esm/plugins/use-unhandled-route.js",
    ]);
  });

  it("holds no GraphiQL page of graphql-yoga's, which Heimdall's Yoga never installs", () => {
    expect(inputs).not.toContain("node_modules/graphql-yoga/esm/graphiql-html.js");
    expect(importersOf("src/worker/aliases/yoga-graphiql-page.ts")).toEqual([
      "node_modules/graphql-yoga/esm/plugins/use-graphiql.js",
    ]);
  });

  it("holds @upstash/ratelimit's ES build, without the analytics Heimdall's limiters leave off", () => {
    expect(inputs.filter((input) => packageOf(input) === "@upstash/ratelimit")).toEqual([
      "node_modules/@upstash/ratelimit/dist/index.mjs",
    ]);
    expect(inputs.filter((input) => packageOf(input) === "@upstash/core-analytics")).toEqual([]);
    expect(importersOf("src/worker/aliases/upstash-analytics.ts")).toEqual([
      "node_modules/@upstash/ratelimit/dist/index.mjs",
    ]);
  });

  it("holds otpauth's build for node:crypto, not the one with its own hashes", () => {
    const otpauth = inputs.filter((input) => packageOf(input) === "otpauth");
    expect(otpauth).toEqual(["node_modules/otpauth/dist/otpauth.node.mjs"]);
  });

  it("holds Heimdall's LRU for graphql-yoga's caches instead of lru-cache", () => {
    expect(inputs.filter((input) => packageOf(input) === "lru-cache")).toEqual([]);
    expect(inputs).toContain("src/worker/aliases/lru-cache.ts");
  });
});

describe("code generation from strings on Workers, which zod's compiler needs", () => {
  it("is refused, so zod's compile hands every schema back on its runtime parser", async () => {
    const dir = mkdtempSync(join(tmpdir(), "heimdall-eval-"));
    const entrypoint = join(dir, "eval.js");
    writeFileSync(
      entrypoint,
      `export default {
        fetch() {
          try {
            return new Response(String(new Function("return 1")()));
          } catch (error) {
            return new Response(error.name);
          }
        },
      };`,
    );
    const worker = await unstable_startWorker({
      entrypoint,
      compatibilityDate: "2026-11-01",
      compatibilityFlags: ["nodejs_compat"],
      dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false },
    });
    try {
      await worker.ready;
      const res = await worker.fetch("http://eval.test/");
      expect(await res.text()).toBe("EvalError");
    } finally {
      await worker.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("the Worker's zod compile", () => {
  it("answers as zod's own does where code generation from strings is refused", async () => {
    // zod's compile in a Node that refuses code generation, as Workers do.
    const script = `import { z } from "zod";
      const schema = z.object({ name: z.string().min(1), count: z.number().int() });
      let strict;
      try { z.compile(schema, { strict: true }); } catch (error) { strict = [error.name, error.message]; }
      console.log(JSON.stringify({ same: z.compile(schema) === schema, strict }));`;
    const { stdout } = await promisify(execFile)(process.execPath, [
      "--disallow-code-generation-from-strings",
      "--input-type=module",
      "-e",
      script,
    ]);
    const zods = JSON.parse(stdout);
    expect(zods.same).toBe(true);

    const schema = z.object({ name: z.string().min(1), count: z.number().int() });
    const compiled = compile(schema);
    let strict: unknown;
    try {
      compile(schema, { strict: true });
    } catch (error) {
      expect(error).toBeInstanceOf(z.ZodCompileUnsupportedError);
      strict = [(error as Error).name, (error as Error).message];
    }
    expect({ same: compiled === schema, strict }).toEqual(zods);
    expect(compiled.parse({ name: "a", count: 2 })).toEqual({ name: "a", count: 2 });
  });
});

describe("the Worker's zod JSON Schema modules", () => {
  it("keep zod's aggregateChecks, behind the bounds and formats zod's schemas answer", () => {
    expect(aggregateChecks).toBe(zodAggregateChecks);
  });

  it("fail, saying why, when a JSON Schema is asked for", () => {
    const schema = z.string().min(2);
    const message = "zod's JSON Schema output is not in the Worker bundle (wrangler.toml [alias])";
    expect(() => createToJSONSchemaMethod(schema)()).toThrow(message);
    expect(() =>
      stringProcessor(schema as never, {} as never, {}, { path: [], schemaPath: [] }),
    ).toThrow(message);
  });
});

describe("the Worker's LRUCache (lru-cache's, as graphql-yoga uses it)", () => {
  it("keeps at most max entries, dropping the least recently used", () => {
    const cache = new LRUCache<string, number>({ max: 2 });
    cache.set("a", 1).set("b", 2);
    expect(cache.get("a")).toBe(1);
    cache.set("c", 3);
    expect(cache.size).toBe(2);
    expect(cache.get("b")).toBeUndefined();
    expect([cache.get("a"), cache.get("c")]).toEqual([1, 3]);
    cache.set("a", 10);
    expect(cache.get("a")).toBe(10);
    expect(cache.size).toBe(2);
    expect(cache.delete("a")).toBe(true);
    expect(cache.has("a")).toBe(false);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it("forgets an entry ttl ms after it was set", () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const cache = new LRUCache<string, string>({ max: 10, ttl: 1_000 });
      cache.set("query", "document");
      vi.setSystemTime(999);
      expect(cache.get("query")).toBe("document");
      expect(cache.has("query")).toBe(true);
      vi.setSystemTime(1_000);
      expect(cache.has("query")).toBe(false);
      expect(cache.get("query")).toBeUndefined();
      expect(cache.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses a cache without a positive max", () => {
    expect(() => new LRUCache({ max: 0 })).toThrow(TypeError);
  });
});
