import type { ZodType } from "zod";

/** A JSON response entry for `createRoute`'s `responses`. */
export function jsonContent<T extends ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}
