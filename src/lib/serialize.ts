/** A row as JSON sends it: dates become ISO 8601 strings. */
export type Serialized<T> = {
  [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K];
};

/** Turns a row's dates into ISO strings, so the value matches its response schema exactly. */
export function serialize<T extends object>(row: T): Serialized<T> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] = value instanceof Date ? value.toISOString() : value;
  }
  return out as Serialized<T>;
}
