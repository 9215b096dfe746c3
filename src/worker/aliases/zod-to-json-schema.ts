import type * as zodToJSONSchema from "../../../node_modules/zod/v4/core/to-json-schema.js";

/**
 * zod's JSON Schema writer (`v4/core/to-json-schema.js`, imported by zod as `./to-json-schema.js`
 * and `../core/to-json-schema.js`) as the Worker bundles it (wrangler.toml `[alias]`): left out,
 * with its per-type processors (`./zod-json-schema-processors.ts`). The OpenAPI document is
 * written by @asteasolutions/zod-to-openapi, which reads schemas itself; nothing in the Worker
 * asks zod for a JSON Schema (`z.toJSONSchema`, `schema.toJSONSchema()`, the `jsonSchema` of
 * `~standard`), which test/worker-bundle.test.ts checks. zod builds those methods on every
 * schema, so they are here, and fail when called.
 */
/** What every member answers here. */
export function notBundled(): never {
  throw new Error("zod's JSON Schema output is not in the Worker bundle (wrangler.toml [alias])");
}

export const initializeContext: typeof zodToJSONSchema.initializeContext = notBundled;
export const handleUnrepresentable: typeof zodToJSONSchema.handleUnrepresentable = notBundled;
export const processSchema: typeof zodToJSONSchema.processSchema = notBundled;
export { processSchema as process };
export const extractDefs: typeof zodToJSONSchema.extractDefs = notBundled;
export const finalize: typeof zodToJSONSchema.finalize = notBundled;
export const createToJSONSchemaMethod: typeof zodToJSONSchema.createToJSONSchemaMethod = () =>
  notBundled;
export const createStandardJSONSchemaMethod: typeof zodToJSONSchema.createStandardJSONSchemaMethod =
  () => notBundled;
