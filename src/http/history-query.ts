import { z } from "@hono/zod-openapi";
import { PaginationQuery } from "./pagination";

/** The position-history filter, validated alike by REST (`GET /v1/gps`) and GraphQL (`positions`). */
export const HistoryQuery = PaginationQuery.extend({
  device_id: z.string().max(64).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  bbox: z
    .string()
    .regex(/^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$/, "minLon,minLat,maxLon,maxLat")
    .optional()
    .openapi({ example: "13.0,52.3,13.8,52.7" }),
});
