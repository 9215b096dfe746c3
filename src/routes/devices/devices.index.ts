import { createRouter } from "../../http/router";
import * as handlers from "./devices.handlers";
import * as routes from "./devices.routes";

/** An app's devices: mounted under `/v1/apps/:app_name` and at `/v1`. */
export const devicesRouter = createRouter()
  .openapi(routes.createDevice, handlers.createDevice)
  .openapi(routes.listDevices, handlers.listDevices)
  .openapi(routes.getDevice, handlers.getDevice)
  .openapi(routes.updateDevice, handlers.updateDevice)
  .openapi(routes.rotateSecret, handlers.rotateSecret)
  .openapi(routes.deleteDevice, handlers.deleteDevice);
