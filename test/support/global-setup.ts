import { requiredInCi } from "./services";

/** With `CI=true` the real-server suites are not optional: a missing URL fails the run. */
export default function setup() {
  if (process.env.CI !== "true") return;
  const missing = requiredInCi.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `CI=true but ${missing.join(" and ")} not set; the real-server suites must run in CI`,
    );
  }
}
