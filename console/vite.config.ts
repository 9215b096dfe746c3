import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { defineConfig, type Plugin } from "vite";

/** A file of an installed package's build folder (where its entry point is). */
const built = (name: string, file: string) =>
  join(dirname(createRequire(import.meta.url).resolve(name)), file);

/**
 * The pages the API serves at `/v1/docs` (Scalar) and `/v1/graphiql` load their scripts from
 * `/vendor/`, not from a CDN: the installed packages' browser builds (versions pinned by the
 * lockfile), copied next to the console's files.
 */
const vendorFiles = (): Plugin => ({
  name: "heimdall-vendor-files",
  apply: "build",
  generateBundle() {
    const files: Array<[string, string]> = [
      ["scalar/standalone.js", built("@scalar/api-reference", "browser/standalone.js")],
      ...[
        "yoga-graphiql.umd.js",
        "graphiql.css",
        "monacoeditorwork/editor.worker.bundle.js",
        "monacoeditorwork/json.worker.bundle.js",
        "monacoeditorwork/graphql.worker..bundle.js",
      ].map((file): [string, string] => [
        `graphiql/${file}`,
        built("@graphql-yoga/graphiql", file),
      ]),
    ];
    for (const [name, source] of files) {
      this.emitFile({ type: "asset", fileName: `vendor/${name}`, source: readFileSync(source) });
    }
  },
});

/**
 * The browser console. `npm run build:console` writes console/dist, which `npm start` serves at
 * `/` and wrangler.toml uploads as the Worker's static assets. `npm run dev:console` serves it
 * with hot reload and sends the API calls to `npm start` on :3000.
 */
export default defineConfig({
  root: import.meta.dirname,
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  plugins: [vendorFiles()],
  server: {
    proxy: { "/v1": { target: "http://localhost:3000", ws: true } },
  },
});
