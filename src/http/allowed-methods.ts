import { TrieRouter } from "hono/router/trie-router";
import type { RouterRoute } from "hono/types";

const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * Finds which methods a path answers to, from the app's own route table, so an unmatched
 * request can be told 405 (with `Allow`) rather than 404. Rebuilt whenever routes are added.
 */
export function allowedMethodsOf(routes: () => RouterRoute[]) {
  let router: TrieRouter<string> | undefined;
  let builtFrom = -1;

  return function allowedMethods(path: string): string[] {
    const handlers = routes().filter((route) => route.method !== "ALL");
    if (!router || builtFrom !== handlers.length) {
      router = new TrieRouter<string>();
      for (const route of handlers) router.add(route.method, route.path, route.method);
      builtFrom = handlers.length;
    }
    const matcher = router;
    const allowed = methods.filter((method) => matcher.match(method, path)[0].length > 0);
    if (allowed.includes("GET") && !allowed.includes("HEAD")) allowed.push("HEAD");
    return allowed;
  };
}
