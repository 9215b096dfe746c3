import { expect } from "vitest";
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
