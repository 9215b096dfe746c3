import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // graphql ships CJS (`main`) and ESM (`module`) builds; Node loads Yoga's copy from `main`,
    // so the project's own imports must take it too, or the schema spans two realms.
    alias: { graphql: fileURLToPath(new URL("node_modules/graphql/index.js", import.meta.url)) },
  },
  test: {
    include: ["test/**/*.test.ts"],
    // The whole-API suites run on their own: `npm run test:hardening` (vitest.hardening.config.ts).
    exclude: ["test/hardening/**", "**/node_modules/**"],
    globalSetup: ["test/support/global-setup.ts"],
    // PGlite's first open (~3 s) and starting workerd or the Node entry take a few seconds.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    env: { LOG_LEVEL: "silent" },
    // test/account.export-memory.test.ts measures the heap a GC leaves.
    execArgv: ["--expose-gc"],
  },
});
