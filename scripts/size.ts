import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/**
 * Prints the Worker bundle's size after gzip, as Cloudflare counts it, and fails above 1 MiB.
 * With the build's metafile in the folder (`bundle-meta.json`, as `npm run build:worker` writes
 * it), also the minified bytes each package (or Heimdall's own code) takes, largest first.
 */
const dir = process.argv[2] ?? "dist";
const limit = 1024 * 1024;
const files = readdirSync(dir).filter((file) => /\.(m?js|wasm)$/.test(file));
let raw = 0;
let gzipped = 0;
for (const file of files) {
  const bytes = readFileSync(join(dir, file));
  raw += bytes.length;
  gzipped += gzipSync(bytes, { level: 9 }).length;
}
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`worker bundle: ${kib(raw)} raw, ${kib(gzipped)} gzip (limit ${kib(limit)})`);

const metafile = join(dir, "bundle-meta.json");
if (existsSync(metafile)) {
  const meta: { outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }> } =
    JSON.parse(readFileSync(metafile, "utf8"));
  const byPackage = new Map<string, number>();
  for (const output of Object.values(meta.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      // The innermost node_modules/<package> of the path, so nested copies count as their package.
      const name = input.match(/.*node_modules\/((?:@[^/]+\/)?[^/]+)/)?.[1] ?? "(Heimdall)";
      byPackage.set(name, (byPackage.get(name) ?? 0) + bytesInOutput);
    }
  }
  const largest = [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 25);
  console.log("minified bytes by package (before gzip):");
  for (const [name, bytes] of largest) console.log(`${kib(bytes).padStart(12)}  ${name}`);
}

if (gzipped > limit) {
  console.error("worker bundle exceeds the 1 MiB gzip budget");
  process.exit(1);
}
