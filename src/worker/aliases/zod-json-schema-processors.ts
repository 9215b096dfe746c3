import type * as zodProcessors from "../../../node_modules/zod/v4/core/json-schema-processors.js";
import type { Processor } from "../../../node_modules/zod/v4/core/to-json-schema.js";
import { notBundled } from "./zod-to-json-schema";

/**
 * zod's JSON Schema processors (`v4/core/json-schema-processors.js`, imported by zod as
 * `./json-schema-processors.js` and `../core/json-schema-processors.js`) as the Worker bundles
 * them (wrangler.toml `[alias]`): the part of zod's JSON Schema writer that each schema type
 * carries, left out with the writer (`./zod-to-json-schema.ts`), whose `processSchema` is the
 * only caller of a processor. `aggregateChecks`, behind the `minLength`, `maxLength`, `format`
 * (and the like) that zod's schemas answer, is zod's own.
 */
export { aggregateChecks } from "../../../node_modules/zod/v4/core/json-schema-processors.js";

export const toJSONSchema: typeof zodProcessors.toJSONSchema = notBundled;
export const allProcessors: Record<string, Processor> = {};
const processor: Processor = notBundled;

export {
  processor as anyProcessor,
  processor as arrayProcessor,
  processor as bigintProcessor,
  processor as booleanProcessor,
  processor as catchProcessor,
  processor as customProcessor,
  processor as dateProcessor,
  processor as defaultProcessor,
  processor as enumProcessor,
  processor as fileProcessor,
  processor as functionProcessor,
  processor as intersectionProcessor,
  processor as lazyProcessor,
  processor as literalProcessor,
  processor as mapProcessor,
  processor as nanProcessor,
  processor as neverProcessor,
  processor as nonoptionalProcessor,
  processor as nullableProcessor,
  processor as nullProcessor,
  processor as numberProcessor,
  processor as objectProcessor,
  processor as optionalProcessor,
  processor as pipeProcessor,
  processor as prefaultProcessor,
  processor as promiseProcessor,
  processor as readonlyProcessor,
  processor as recordProcessor,
  processor as setProcessor,
  processor as stringProcessor,
  processor as successProcessor,
  processor as symbolProcessor,
  processor as templateLiteralProcessor,
  processor as transformProcessor,
  processor as tupleProcessor,
  processor as undefinedProcessor,
  processor as unionProcessor,
  processor as unknownProcessor,
  processor as voidProcessor,
};
