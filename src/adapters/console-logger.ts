import { redactSecrets } from "../lib/redact";
import type { LogFields, Logger, LogLevel } from "../ports/logger";

const rank: Record<LogLevel | "silent", number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 100,
};

type Sink = (line: string) => void;

/**
 * JSON-lines logger on `console`, the form both Workers Logs and Node log shippers parse. Every
 * line goes through `redactSecrets`.
 *
 * @example
 * const logger = createConsoleLogger({ level: "info" });
 * logger.child({ request_id }).info("request", { status: 200 });
 */
export function createConsoleLogger(options: {
  level: LogLevel | "silent";
  fields?: LogFields;
  sink?: Sink;
}): Logger {
  const threshold = rank[options.level];
  const base = options.fields ?? {};
  const sink: Sink = options.sink ?? ((line) => console.log(line));

  const write = (level: LogLevel, message: string, fields?: LogFields) => {
    if (rank[level] < threshold) return;
    // Whatever a line carries (a path, an error's message), no secret Heimdall issued is written.
    sink(
      redactSecrets(
        JSON.stringify(
          { time: new Date().toISOString(), level, message, ...base, ...fields },
          errorReplacer,
        ),
      ),
    );
  };

  return {
    debug: (message, fields) => write("debug", message, fields),
    info: (message, fields) => write("info", message, fields),
    warn: (message, fields) => write("warn", message, fields),
    error: (message, fields) => write("error", message, fields),
    child: (fields) => createConsoleLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** `JSON.stringify` drops the fields of errors and events; keep the ones that explain a failure. */
function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: value.cause };
  }
  // Socket failures (the Neon driver's WebSocket) arrive as events whose fields are getters.
  if (typeof Event !== "undefined" && value instanceof Event) {
    return { type: value.type, message: "message" in value ? value.message : undefined };
  }
  return value;
}
