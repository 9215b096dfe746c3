import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createPostgresDatabase } from "../src/adapters/postgres/database";
import { startNeonProxy } from "./neon-proxy";

/**
 * `npm run dev:worker`: the Worker in `wrangler dev` against a local Postgres, which it reaches
 * as it would reach Neon, through the WebSocket proxy of scripts/neon-proxy.ts. Applies the
 * migrations to `DATABASE_URL` (default: the local server's `postgres` database), starts the
 * proxy on `NEON_PROXY_PORT` (default 8788) and wrangler with both URLs and `APP_ENV=development`
 * as vars; arguments go to `wrangler dev` (a later `--var` wins). The Worker's two required
 * secrets come from `.dev.vars`: missing ones are generated into it once (the admin key printed).
 */
const devVars = fileURLToPath(new URL("../.dev.vars", import.meta.url));
const present = existsSync(devVars) ? readFileSync(devVars, "utf8") : "";
for (const name of ["ADMIN_API_KEY", "KEY_ENCRYPTION_SECRET"]) {
  if (new RegExp(`^${name}=`, "m").test(present)) continue;
  const value = randomBytes(32).toString("base64url");
  appendFileSync(devVars, `${present && !present.endsWith("\n") ? "\n" : ""}${name}=${value}\n`);
  console.log(`${name} generated into .dev.vars${name === "ADMIN_API_KEY" ? `: ${value}` : ""}`);
}

const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const migrationsFolder = fileURLToPath(new URL("../drizzle", import.meta.url));
await (await createPostgresDatabase({ url, migrationsFolder, maxConnections: 1 })).close();

const proxy = await startNeonProxy(Number(process.env.NEON_PROXY_PORT ?? 8788));
console.log(`Postgres proxy for the Neon driver at ${proxy.url}`);
const wrangler = spawn(
  "wrangler",
  [
    "dev",
    "--var",
    "APP_ENV:development",
    "--var",
    `DATABASE_URL:${url}`,
    "--var",
    `NEON_WS_PROXY:${proxy.url}`,
    ...process.argv.slice(2),
  ],
  { stdio: "inherit" },
);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => wrangler.kill(signal));
}
wrangler.on("exit", async (code) => {
  await proxy.close();
  process.exit(code ?? 1);
});
