import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cruise, type ICruiseResult } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import { afterEach, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("..", import.meta.url));

/** Cruises a throwaway tree laid out like the repo, with the repo's own rule set. */
async function violationsIn(files: Record<string, string>): Promise<string[]> {
  const root = await mkdtemp(join(tmpdir(), "heimdall-depcruise-"));
  roots.push(root);
  // Packages resolve from the repo's node_modules, seen at the tree's own node_modules/.
  await symlink(join(repo, "node_modules"), join(root, "node_modules"), "dir");
  for (const [path, source] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), source);
  }
  const options = await extractDepcruiseOptions(join(repo, ".dependency-cruiser.cjs"));
  const { output } = await cruise(["src"], { ...options, baseDir: root, preserveSymlinks: true });
  return (output as ICruiseResult).summary.violations
    .map((violation) => `${violation.rule.name}: ${violation.from} -> ${violation.to}`)
    .sort();
}

const roots: string[] = [];
afterEach(async () => {
  await Promise.all(roots.splice(0).map((root) => rm(root, { recursive: true, force: true })));
});

describe("the dependency rules (.dependency-cruiser.cjs)", () => {
  it("accept imports that follow the layers", async () => {
    const violations = await violationsIn({
      "src/lib/ids.ts": `export const id = () => "x";\n`,
      "src/services/users.ts": `import { id } from "../lib/ids";\nimport { z } from "zod";\nexport const user = () => z.string().parse(id());\n`,
    });
    expect(violations).toEqual([]);
  });

  it("fail on a cycle (a type-only import closes it), a lower layer importing a higher one, and a service importing hono", async () => {
    const violations = await violationsIn({
      "src/services/a.ts": `import { b } from "./b";\nexport const a = () => b();\n`,
      "src/services/b.ts": `import type { a } from "./a";\nexport const b = (): ReturnType<typeof a> => undefined;\n`,
      "src/lib/format.ts": `import { a } from "../services/a";\nexport const format = () => a();\n`,
      "src/services/x.ts": `import { Hono } from "hono";\nexport const app = new Hono();\n`,
    });
    expect(violations).toEqual([
      "lib-imports-only-lib: src/lib/format.ts -> src/services/a.ts",
      "no-circular: src/services/a.ts -> src/services/b.ts",
      expect.stringMatching(/^services-no-hono: src\/services\/x\.ts -> node_modules\/hono\//),
    ]);
  });

  it("keep each runtime's modules to its own code", async () => {
    const violations = await violationsIn({
      "src/services/files.ts": `import { readFile } from "node:fs/promises";\nexport const read = readFile;\n`,
      "src/services/objects.ts": `import { DurableObject } from "cloudflare:workers";\nexport const base = DurableObject;\n`,
      "src/adapters/cloudflare/objects.ts": `import { DurableObject } from "cloudflare:workers";\nexport const base = DurableObject;\n`,
    });
    expect(violations).toEqual([
      "node-builtins-only-in-node-code: src/services/files.ts -> fs/promises",
      "worker-modules-only-in-worker-code: src/services/objects.ts -> cloudflare:workers",
    ]);
  });
});
