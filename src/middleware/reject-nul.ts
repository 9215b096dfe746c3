import type { Context } from "hono";
import type { AppEnv } from "../http/app-env";
import { primeUrlEncodedForm } from "../http/request-body";
import { ApiError } from "../lib/errors";

/**
 * A JSON escape of half a UTF-16 surrogate pair (`"\ud800"`) without its other half: the one way
 * a string that is not valid Unicode gets in (bytes are decoded with replacement). Postgres
 * refuses it in jsonb, where such strings end up (metadata, audit events). Like the NUL check,
 * it may refuse an escaped backslash followed by `ud800`, never let a lone half through.
 */
const LONE_SURROGATE =
  /\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}/;

/**
 * Postgres cannot store NUL in text, so a NUL anywhere in the path, the query or a JSON or form
 * body is refused up front with a 400, instead of failing deep in a query; so is a lone
 * surrogate in a JSON body.
 */
export function rejectNul(c: Context<AppEnv>): Promise<void> | undefined {
  const url = c.req.url;
  if (url.includes("%00") || url.includes("\0")) {
    throw new ApiError("bad_request", "NUL characters are not accepted in URLs");
  }
  const type = c.req.header("content-type") ?? "";
  const json = type.includes("json");
  // Only a body that is read needs a wait: other requests go on in the same turn.
  if (json || type.includes("x-www-form-urlencoded")) return rejectNulInBody(c, json);
}

async function rejectNulInBody(c: Context<AppEnv>, json: boolean) {
  const text = await c.req.text();
  const nul = json ? text.includes("\\u0000") : /%00/.test(text);
  if (nul || text.includes("\0")) {
    throw new ApiError("bad_request", "NUL characters are not accepted in request bodies");
  }
  if (json && LONE_SURROGATE.test(text)) {
    throw new ApiError("bad_request", "Unpaired UTF-16 surrogates are not accepted in JSON");
  }
  if (!json) primeUrlEncodedForm(c, text);
}
