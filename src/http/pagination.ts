import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { ZodType } from "zod";
import type { AppEnv } from "./app-env";
import { absoluteUrl } from "./links";

export const PaginationQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20).openapi({ example: 20 }),
  offset: z.coerce.number().int().min(0).default(0).openapi({ example: 0 }),
});

export type Pagination = z.infer<typeof PaginationQuery>;

const PaginationSchema = z
  .object({
    total: z.number().int(),
    limit: z.number().int(),
    offset: z.number().int(),
    has_more: z.boolean(),
  })
  .openapi("Pagination");

/** `{data:[…], pagination, _links:{self, next?, prev?}}` for a list of `item`. */
export function listSchema<T extends ZodType>(item: T, name: string) {
  return z
    .object({
      data: z.array(item),
      pagination: PaginationSchema,
      _links: z.object({ self: z.url(), next: z.url().optional(), prev: z.url().optional() }),
    })
    .openapi(name);
}

/** The list envelope, with `next`/`prev` links that keep the request's other query parameters. */
export function paginated<T>(c: Context<AppEnv>, data: T[], total: number, page: Pagination) {
  const link = (offset: number) => {
    const url = new URL(absoluteUrl(c, c.req.path));
    for (const [name, value] of new URL(c.req.url).searchParams) url.searchParams.set(name, value);
    url.searchParams.set("limit", String(page.limit));
    url.searchParams.set("offset", String(offset));
    return url.toString();
  };
  const hasMore = page.offset + data.length < total;
  return {
    data,
    pagination: { total, limit: page.limit, offset: page.offset, has_more: hasMore },
    _links: {
      self: link(page.offset),
      ...(hasMore ? { next: link(page.offset + page.limit) } : {}),
      ...(page.offset > 0 ? { prev: link(Math.max(0, page.offset - page.limit)) } : {}),
    },
  };
}
