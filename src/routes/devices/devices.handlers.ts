import type { RouteHandler } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../http/app-env";
import { absoluteUrl, scopePath } from "../../http/links";
import { paginated } from "../../http/pagination";
import { serialize } from "../../lib/serialize";
import { appInScope } from "../../middleware/auth";
import * as service from "../../services/devices";
import type * as routes from "./devices.routes";

function resource<T extends { id: string }>(c: Context<AppEnv>, device: T) {
  const self = `${scopePath(c)}/devices/${device.id}`;
  return {
    data: serialize(device),
    _links: {
      self: absoluteUrl(c, self),
      positions: absoluteUrl(c, `/v1/gps?device_id=${device.id}`),
    },
  };
}

export const createDevice: RouteHandler<typeof routes.createDevice, AppEnv> = async (c) => {
  const device = await service.createDevice(c.var.services, appInScope(c), c.req.valid("json"));
  const body = resource(c, device);
  c.header("Location", body._links.self);
  c.header("Cache-Control", "no-store");
  return c.json(body, 201);
};

export const listDevices: RouteHandler<typeof routes.listDevices, AppEnv> = async (c) => {
  const page = c.req.valid("query");
  const { data, total } = await service.listDevices(c.var.services, appInScope(c).id, page);
  return c.json(paginated(c, data.map(serialize), total, page), 200);
};

export const getDevice: RouteHandler<typeof routes.getDevice, AppEnv> = async (c) => {
  const device = await service.findDevice(
    c.var.services,
    appInScope(c).id,
    c.req.valid("param").device_id,
  );
  return c.json(resource(c, service.deviceView(device)), 200);
};

export const updateDevice: RouteHandler<typeof routes.updateDevice, AppEnv> = async (c) => {
  const device = await service.updateDevice(
    c.var.services,
    appInScope(c),
    c.req.valid("param").device_id,
    c.req.valid("json"),
  );
  return c.json(resource(c, device), 200);
};

export const rotateSecret: RouteHandler<typeof routes.rotateSecret, AppEnv> = async (c) => {
  const device = await service.rotateDeviceSecret(
    c.var.services,
    appInScope(c),
    c.req.valid("param").device_id,
  );
  c.header("Cache-Control", "no-store");
  return c.json(resource(c, device), 200);
};

export const deleteDevice: RouteHandler<typeof routes.deleteDevice, AppEnv> = async (c) => {
  await service.deleteDevice(c.var.services, appInScope(c), c.req.valid("param").device_id);
  return c.body(null, 204);
};
