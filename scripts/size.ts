import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** Prints the Worker bundle's size after gzip, as Cloudflare counts it, and fails above 1 MiB. */
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
if (gzipped > limit) {
  console.error("worker bundle exceeds the 1 MiB gzip budget");
  process.exit(1);
}
