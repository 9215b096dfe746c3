import { fileURLToPath } from "node:url";
import { createPostgresDatabase } from "../src/adapters/postgres/database";

/** `npm run db:migrate`: applies `drizzle/` to the Postgres (or Neon) database of `DATABASE_URL`. */
const url = process.env.DATABASE_URL;
if (!url) {
  console.error("DATABASE_URL is not set");
  process.exit(1);
}
const migrationsFolder = fileURLToPath(new URL("../drizzle", import.meta.url));
const db = await createPostgresDatabase({ url, migrationsFolder, maxConnections: 1 });
await db.close();
console.log("migrations applied");
