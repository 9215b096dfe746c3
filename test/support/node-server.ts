import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface RunningServer {
  url: string;
  /** The server's own process (Linux): tsx runs the entry in a child of the process spawned here. */
  readonly pid: number;
  output: () => string;
  stop(): Promise<number | null>;
  /** Sends `signal` to the server's own process (SIGKILL: a crash) and waits until it is gone. */
  kill(signal: NodeJS.Signals): Promise<void>;
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
      resolve({
        url: match[1],
        get pid() {
          return serverPid(child);
        },
        output: () => output,
        stop: () => stopChild(child),
        kill: (signal) => killServer(child, signal),
      });
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

/**
 * The tsx CLI's child, which runs the entry (Linux's /proc): signalled directly, since a SIGKILL
 * to the CLI would leave it running as an orphan.
 */
function serverPid(child: ChildProcess): number {
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, "utf8");
  const pid = Number(children.trim().split(" ")[0]);
  if (!pid) throw new Error(`no server process under tsx (${child.pid})`);
  return pid;
}

function killServer(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    // tsx exits once the entry has.
    child.once("exit", () => resolve());
    process.kill(serverPid(child), signal);
  });
}
