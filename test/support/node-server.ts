import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningServer {
  url: string;
  output: () => string;
  stop(): Promise<number | null>;
}

/**
 * Starts `npm start`'s entry (`tsx src/node.ts`) as a child process on a free port and waits for
 * its `listening` log line. Rejects with the output if it exits first.
 */
export function startNodeServer(env: Record<string, string>): Promise<RunningServer> {
  const child = spawn(process.execPath, [`${root}node_modules/tsx/dist/cli.mjs`, "src/node.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });

  return new Promise((resolve, reject) => {
    const onData = () => {
      const match = output.match(/"message":"listening".*?"url":"([^"]+)"/);
      if (!match?.[1]) return;
      child.stdout?.off("data", onData);
      resolve({ url: match[1], output: () => output, stop: () => stopChild(child) });
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new ExitedError(code, output)));
  });
}

/** Runs the entry to completion, for configurations that must refuse to start. */
export function runNodeServer(
  env: Record<string, string>,
): Promise<{ code: number | null; output: string }> {
  return startNodeServer(env).then(
    async (server) => ({ code: await server.stop(), output: server.output() }),
    (error: ExitedError) => ({ code: error.code, output: error.output }),
  );
}

export class ExitedError extends Error {
  constructor(
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`server exited with ${code}:\n${output}`);
  }
}

function stopChild(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}
