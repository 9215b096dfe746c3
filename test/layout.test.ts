/**
 * Where a route's tests are. The capabilities are the folders under src/routes/; the tests of
 * src/routes/<capability>/ are test/<capability>.test.ts, and test/<capability>.<aspect>.test.ts
 * when there are several files (test/gps.trackers.test.ts). Suites that cross capabilities (the
 * request pipeline, adapters, rate limits, test/hardening/) have descriptive names without a dot
 * before `.test.ts`, and no capability's name.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";

const capabilities = readdirSync(new URL("../src/routes", import.meta.url), {
  withFileTypes: true,
})
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);
const testFiles = readdirSync(new URL(".", import.meta.url)).filter((name) =>
  name.endsWith(".test.ts"),
);
/** `gps` of gps.test.ts and gps.trackers.test.ts; the whole name of a cross-cutting suite. */
const subjectOf = (file: string) => file.replace(/\.test\.ts$/, "").split(".")[0] ?? "";

describe("test layout", () => {
  it("finds the capabilities", () => {
    expect(capabilities.length).toBeGreaterThan(0);
  });

  it.each(capabilities)("src/routes/%s has test/<capability>[.<aspect>].test.ts", (capability) => {
    expect(testFiles.filter((file) => subjectOf(file) === capability)).not.toEqual([]);
  });

  it("names every test file with an aspect after a capability", () => {
    const strays = testFiles.filter(
      (file) => file.split(".").length > 3 && !capabilities.includes(subjectOf(file)),
    );
    expect(strays).toEqual([]);
  });
});
