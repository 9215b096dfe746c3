import { fileURLToPath } from "node:url";
import { build } from "vite";
import { requiredInCi } from "./services";

/**
 * Builds the console once per run (the Node entry serves it, the Worker's assets are its build,
 * the browser test drives it). With `CI=true` the real-server suites are not optional: a
 * missing URL fails the run.
 */
export default async function setup() {
  await build({
    configFile: fileURLToPath(new URL("../../console/vite.config.ts", import.meta.url)),
    logLevel: "warn",
  });
  if (process.env.CI !== "true") return;
  const missing = requiredInCi.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `CI=true but ${missing.join(" and ")} not set; the real-server suites must run in CI`,
    );
  }
}
