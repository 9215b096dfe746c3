/**
 * zod's locale catalogue as the Worker bundles it (wrangler.toml `[alias]`): English only, the
 * locale zod reports in by default and the only one Heimdall uses. The full catalogue holds
 * some 50 languages that `z.locales` keeps in the bundle whether or not they are used.
 */
export { default as en } from "zod/v4/locales/en.js";
