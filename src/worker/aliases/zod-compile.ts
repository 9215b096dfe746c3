import type { CompileOptions } from "../../../node_modules/zod/v4/core/compile.js";
import { ZodCompileUnsupportedError } from "../../../node_modules/zod/v4/core/compile.js";

/**
 * zod's schema compiler module (`v4/core/compile.js`, imported by zod's core as `./compile.js`)
 * as the Worker bundles it (wrangler.toml `[alias]`). zod's `compile` generates each schema's
 * parser with `new Function`, which Workers refuse (code generation from strings is disallowed),
 * and then hands the schema back unchanged, on the runtime parser, or throws
 * `ZodCompileUnsupportedError` under `{ strict: true }`: that answer, without the 30 KiB code
 * generator (`compileFn`) that `z.core` would otherwise keep in the bundle. `withParser`, which
 * installs a parser made elsewhere and needs no code generation, is zod's own.
 */
export {
  INVALID,
  withParser,
  ZodCompileAsyncError,
  ZodCompileUnsupportedError,
} from "../../../node_modules/zod/v4/core/compile.js";

export function compile<T>(schema: T, options?: CompileOptions): T {
  if (options?.strict) {
    throw new ZodCompileUnsupportedError(
      "this schema (generated code failed to evaluate: Code generation from strings disallowed for this context)",
    );
  }
  return schema;
}
