import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * Runs `body` in a Node process of its own with the Node entry's logger (batched stdout lines)
 * as `logger`, and answers its exit code and output.
 */
function runLogging(body: string) {
  const code = `
    import { createConsoleLogger } from "./src/adapters/console-logger.ts";
    import { createStdoutLines } from "./src/adapters/node/stdout-lines.ts";
    const logger = createConsoleLogger({ level: "info", fields: { service: "heimdall" }, sink: createStdoutLines().write });
    ${body}
  `;
  const child = spawn(
    process.execPath,
    ["--import", `${root}node_modules/tsx/dist/loader.mjs`, "--input-type=module", "--eval", code],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  return new Promise<{ code: number | null; lines: string[]; stderr: string }>((resolve) => {
    child.once("close", (exit) =>
      resolve({ code: exit, lines: stdout.split("\n").filter(Boolean), stderr }),
    );
  });
}

/** The `n` of every `line n` event, in the order written. */
const numbers = (lines: string[]) =>
  lines.map((line) => JSON.parse(line)).map((event) => Number(event.message.split(" ")[1]));

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("the Node entry's log lines", () => {
  it("arrive all of them, in order, in the log format, across turns and past the held maximum", async () => {
    const { code, lines } = await runLogging(`
      const child = logger.child({ request_id: "req-1" });
      for (let i = 0; i < 600; i++) child.info("line " + i, { i });
      await new Promise((resolve) => setTimeout(resolve, 20));
      for (let i = 600; i < 700; i++) child.info("line " + i, { i });
    `);
    expect(code).toBe(0);
    expect(numbers(lines)).toEqual(range(700));
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
      level: "info",
      message: "line 0",
      service: "heimdall",
      request_id: "req-1",
      i: 0,
    });
  });

  it("are written together, not one write per line", async () => {
    const { code, stderr } = await runLogging(`
      let writes = 0;
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = (...args) => { writes += 1; return write(...args); };
      for (let i = 0; i < 100; i++) logger.info("line " + i);
      const duringTheTurn = writes;
      await new Promise((resolve) => setTimeout(resolve, 20));
      process.stdout.write = write;
      console.error(JSON.stringify({ duringTheTurn, writes }));
    `);
    expect(code).toBe(0);
    expect(JSON.parse(stderr.trim().split("\n").at(-1) ?? "{}")).toEqual({
      duringTheTurn: 0,
      writes: 1,
    });
  });

  it("are flushed when the process exits in the turn that logged them", async () => {
    const { code, lines } = await runLogging(`
      for (let i = 0; i < 50; i++) logger.info("line " + i);
      process.exit(3);
    `);
    expect(code).toBe(3);
    expect(numbers(lines)).toEqual(range(50));
  });

  it("are flushed before the process dies of an uncaught error", async () => {
    const { code, lines, stderr } = await runLogging(`
      setTimeout(() => {
        for (let i = 0; i < 50; i++) logger.info("line " + i);
        throw new Error("crash after logging");
      });
    `);
    expect(code).toBe(1);
    expect(stderr).toContain("crash after logging");
    expect(numbers(lines)).toEqual(range(50));
  });

  it("are flushed when the event loop runs out of work", async () => {
    const { code, lines } = await runLogging(`
      for (let i = 0; i < 20; i++) logger.info("line " + i);
    `);
    expect(code).toBe(0);
    expect(numbers(lines)).toEqual(range(20));
  });
});
