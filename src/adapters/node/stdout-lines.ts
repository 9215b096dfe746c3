/** Lines held before they are written without waiting for the turn to end. */
const MAX_HELD_LINES = 256;

/**
 * Lines for stdout, written together: once per turn of the event loop (`setImmediate`), or as
 * soon as `MAX_HELD_LINES` are held, instead of one blocking write per line on the request's
 * path (stdout is synchronous on Linux, files and pipes alike). What is held is written on exit,
 * when the event loop empties and before the process dies of an uncaught error, so no line is
 * lost on the way out. Written through `console.log`, which, as before, ignores a closed stdout,
 * unless `print` writes them elsewhere (the benchmarks' log file).
 *
 * @example
 * const logger = createConsoleLogger({ level: "info", sink: createStdoutLines().write });
 */
export function createStdoutLines(print = (text: string) => console.log(text)) {
  let held: string[] = [];
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (held.length === 0) return;
    const text = held.join("\n");
    held = [];
    print(text);
  };
  const write = (line: string) => {
    held.push(line);
    if (held.length >= MAX_HELD_LINES) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  process.on("beforeExit", flush);
  process.on("exit", flush);
  process.on("uncaughtExceptionMonitor", flush);
  return { write, flush };
}
