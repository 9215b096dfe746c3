import { expect } from "vitest";
import { readJson } from "./http";
import { bearer, type Requester, send } from "./identity";

/**
 * A device created by the app's admin with `body`, and `points` posted to it with its own secret,
 * 1,000 a batch, each batch acknowledged.
 */
export async function deviceWithPoints(
  app: Requester,
  adminToken: string,
  body: Record<string, unknown>,
  points: object[],
): Promise<{ id: string; secret: string }> {
  const device = (
    await readJson(await send(app, "POST", "/v1/devices", { body, headers: bearer(adminToken) }))
  ).data as { id: string; secret: string };
  for (let i = 0; i < points.length; i += 1000) {
    const res = await send(app, "POST", "/v1/gps/batch", {
      body: { points: points.slice(i, i + 1000) },
      headers: bearer(device.secret),
    });
    expect(res.status).toBe(200);
  }
  return device;
}
