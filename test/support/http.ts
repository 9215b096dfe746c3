import { expect } from "vitest";
import type { z } from "zod";
import { type ErrorBody, ErrorSchema } from "../../src/http/openapi";

/**
 * Asserts a response is an error in Heimdall's error shape: the status, the code, a message, and the
 * same request id as the `X-Request-Id` header. Returns the body for further checks.
 */
export async function expectError(
  res: HttpResponse,
  status: number,
  code: string,
): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = ErrorSchema.strict().parse(JSON.parse(text));
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(body.error.request_id).toBe(res.headers.get("x-request-id"));
  return body;
}

/** The JSON body schema a route (`createRoute`) declares for a status. */
type DeclaredBody<Route, Status extends number> = Route extends {
  responses: { [S in Status]: { content: { "application/json": { schema: infer Schema } } } };
}
  ? Schema extends z.ZodType
    ? Schema
    : never
  : never;

/**
 * A response's body, checked against the schema its route declares for `status` and typed by
 * it; another status, or a body the schema refuses, fails. The body is returned as it came,
 * members the schema does not name included.
 *
 * @example
 * const ban = (await readBody(res, createBan, 201)).data;
 */
export async function readBody<
  Route extends { method: string; path: string; responses: object },
  Status extends number,
>(res: HttpResponse, route: Route, status: Status): Promise<z.input<DeclaredBody<Route, Status>>> {
  const text = await res.text();
  const label = `${route.method.toUpperCase()} ${route.path} ${status}`;
  if (res.status !== status) throw new Error(`${label}: answered ${res.status}: ${text}`);
  const declared = (
    route.responses as Record<number, { content?: Record<string, { schema?: z.ZodType }> }>
  )[status];
  const schema = declared?.content?.["application/json"]?.schema;
  if (!schema) throw new Error(`${label}: the route declares no JSON body`);
  const body: unknown = JSON.parse(text);
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new Error(`${label}: the body is not the declared one: ${parsed.error.message}`);
  // The body as sent, not as parsed: parsing drops the members the schema does not name.
  return body as z.input<DeclaredBody<Route, Status>>;
}

/** A response body as loosely typed JSON, for assertions that check its shape themselves. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions inspect arbitrary JSON
export const readJson = (res: HttpResponse): Promise<any> => res.json();

/** What the helpers read of a response: Node's fetch, the app's, or workerd's through wrangler. */
export interface HttpResponse {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
  json(): Promise<unknown>;
}
