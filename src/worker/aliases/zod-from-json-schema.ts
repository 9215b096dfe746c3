import type { fromJSONSchema as zodFromJSONSchema } from "../../../node_modules/zod/v4/classic/from-json-schema.js";

/**
 * zod's JSON Schema reader (`v4/classic/from-json-schema.js`, imported by zod as
 * `./from-json-schema.js`) as the Worker bundles it (wrangler.toml `[alias]`): left out. Nothing
 * in the Worker reads a JSON Schema into zod (test/worker-bundle.test.ts checks that no bundled
 * module but zod's namespace names `fromJSONSchema`); `z.fromJSONSchema` stays only because
 * every member of the `z` namespace does, its importers taking it by name (`import { z }`).
 */
export const fromJSONSchema: typeof zodFromJSONSchema = () => {
  throw new Error("z.fromJSONSchema is not in the Worker bundle (wrangler.toml [alias])");
};
