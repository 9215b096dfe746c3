import { defineConfig } from "vitest/config";
import base from "./vitest.config";

/**
 * `npm run test:hardening`: suites over every route of the served OpenAPI document (fuzz, tenant
 * isolation, JWT attacks), faults (SIGKILL mid-ingest, dependencies down) and a soak.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ["test/hardening/**/*.test.ts"],
    exclude: ["**/node_modules/**"],
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
