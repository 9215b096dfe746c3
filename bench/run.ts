/**
 * `npm run bench`: every scenario in one run on this machine, side by side with the ceiling of
 * its own stack and with peers, written to bench/results.md with the machine, date and commands.
 * Scenarios needing Postgres or Redis run when BENCH_/TEST_DATABASE_URL and BENCH_/TEST_REDIS_URL
 * are set; the others run on the embedded defaults.
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fmt, type Scenario } from "./harness";
import { scenario as auth } from "./scenarios/auth";
import { scenario as fanout } from "./scenarios/fanout";
import { gpsScenario } from "./scenarios/gps";
import { scenario as tokens } from "./scenarios/tokens";

const postgres = Boolean(process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL);
const scenarios: Scenario[] = [
  gpsScenario("pglite"),
  ...(postgres ? [gpsScenario("postgres")] : []),
  fanout,
  tokens,
  auth,
];

const published = [
  "## Published figures of peers (context, not measured here)",
  "",
  "| system | figure | source |",
  "| --- | --- | --- |",
  "| Ory Hydra | 513 `client_credentials` requests/s on 2 CPUs | Ory's published benchmark |",
  "| Keycloak | 120 `client_credentials` and 15 password logins per vCPU per second | Keycloak's sizing guide |",
  "| Traccar | 2,000 requests/s for a well-tuned server | its maintainers |",
  "| Dawarich | 28 s to draw 230,000 points | its users' reports |",
  "",
].join("\n");

async function main() {
  const started = performance.now();
  const sections: string[] = [];
  for (const scenario of scenarios) {
    const t = performance.now();
    process.stdout.write(`bench: ${scenario.name}… `);
    try {
      sections.push(await scenario.run());
      console.log(`${fmt((performance.now() - t) / 1000, 1)} s`);
    } catch (error) {
      console.log("failed");
      console.error(error);
      sections.push(`## ${scenario.name}\n\nThis scenario failed: ${String(error)}\n`);
    }
  }
  const minutes = (performance.now() - started) / 60_000;
  const report = [
    "# Benchmarks",
    "",
    `\`npm run bench\` on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${fmt(minutes, 1)} min; ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${fmt(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
    `Databases: ${postgres ? "embedded PGlite and PostgreSQL" : "embedded PGlite (set TEST_DATABASE_URL for the Postgres runs)"}. HTTP load comes from a separate process (autocannon) on loopback; each pair is measured in the same run, so read the ratios rather than the absolute figures on this 2-core, shared machine.`,
    "",
    ...sections,
    published,
  ].join("\n");
  writeFileSync(new URL("./results.md", import.meta.url), report);
  console.log(report);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
