import type { getPgColumnBuilders as drizzleColumnBuilders } from "../../../node_modules/drizzle-orm/pg-core/columns/all.js";

/**
 * drizzle-orm's catalogue of Postgres column builders (`pg-core/columns/all.js`, imported by its
 * `pgTable` as `./columns/all.js`) as the Worker bundles it (wrangler.toml `[alias]`): left out.
 * `pgTable` hands it only to a table whose columns are a callback (`pgTable("t", (t) => …)`),
 * and it holds every column type drizzle has (PostGIS, pgvector, network addresses, …);
 * Heimdall's tables (src/db/schema/) name their columns in an object, importing the builders they
 * use. A table written the other way fails here, when the Worker loads its schema.
 */
export const getPgColumnBuilders: typeof drizzleColumnBuilders = () => {
  throw new Error(
    "drizzle's column builder catalogue is not in the Worker bundle (wrangler.toml [alias]): name a table's columns in an object",
  );
};
