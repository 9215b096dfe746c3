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

interface Output {
  threshold: number;
  sink: Sink;
}

/**
 * A logger and the fields it adds to every event. A child is one small object sharing its
 * parent's output, so a request-scoped logger costs nothing until it writes.
 */
class JsonLinesLogger implements Logger {
  constructor(
    private readonly output: Output,
    private readonly fields: LogFields,
  ) {}

  debug(message: string, fields?: LogFields) {
    this.write("debug", message, fields);
  }

  info(message: string, fields?: LogFields) {
    this.write("info", message, fields);
  }

  warn(message: string, fields?: LogFields) {
    this.write("warn", message, fields);
  }

  error(message: string, fields?: LogFields) {
    this.write("error", message, fields);
  }

  child(fields: LogFields): Logger {
    return new JsonLinesLogger(this.output, { ...this.fields, ...fields });
  }

  private write(level: LogLevel, message: string, fields?: LogFields) {
    if (rank[level] < this.output.threshold) return;
    const event = { time: new Date().toISOString(), level, message, ...this.fields, ...fields };
    // A replacer is called for every value: only an event holding objects may need it.
    const line =
      holdsObject(this.fields) || (fields && holdsObject(fields))
        ? JSON.stringify(event, errorReplacer)
        : JSON.stringify(event);
    // Whatever a line carries (a path, an error's message), no secret Heimdall issued is written.
    this.output.sink(redactSecrets(line));
  }
}

function holdsObject(fields: LogFields) {
  for (const name in fields) {
    const value = fields[name];
    if (typeof value === "object" && value !== null) return true;
  }
  return false;
}

/**
 * JSON-lines logger, one line per event, the form both Workers Logs and Node log shippers
 * parse: on `console` unless given another `sink` (the Node entry's batched stdout). Every line
 * goes through `redactSecrets`.
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
  const sink: Sink = options.sink ?? ((line) => console.log(line));
  return new JsonLinesLogger({ threshold: rank[options.level], sink }, options.fields ?? {});
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
