import { createRouter } from "../../http/router";
import * as handlers from "./gps.handlers";
import * as routes from "./gps.routes";

/** `/v1/gps…`: ingest from devices and tracker apps, current positions and history. */
export const gpsRouter = createRouter()
  .openapi(routes.currentPositions, handlers.currentPositions)
  .openapi(routes.history, handlers.history)
  .openapi(routes.stats, handlers.stats)
  .openapi(routes.track, handlers.track)
  .openapi(routes.postPosition, handlers.postPosition)
  .openapi(routes.postBatch, handlers.postBatch)
  .openapi(routes.osmandGet, handlers.osmandGet)
  .openapi(routes.osmandPost, handlers.osmandPost)
  .openapi(routes.owntracks, handlers.owntracks)
  .openapi(routes.overland, handlers.overland)
  .openapi(routes.gpsloggerGet, handlers.gpsloggerGet)
  .openapi(routes.gpsloggerPost, handlers.gpsloggerPost)
  .openapi(routes.getPosition, handlers.getPosition)
  .openapi(routes.deletePosition, handlers.deletePosition);
