import { expect } from "vitest";
import { adminHeaders } from "./app";
import { readJson } from "./http";

export interface Tenant {
  app: { id: string; name: string };
  /** A user holding the built-in `admin` role (`*:*`), and their tokens. */
  admin: { id: string; email: string; accessToken: string; refreshToken: string };
  /** A user with only `projects:read`. */
  reader: { id: string; email: string; accessToken: string; refreshToken: string };
  role: { id: string; name: string };
}

export const PASSWORD = "correct horse battery";

/** What the helpers send requests through: the app in-process, or a server over HTTP. */
export interface Requester {
  request(path: string, init?: RequestInit): Response | Promise<Response>;
}

/** A server over real HTTP, as a `Requester`. */
export const overHttp = (base: string): Requester => ({
  request: (path, init) => fetch(new URL(path, base), init),
});

/** Sends JSON to the app (in-process, or a server over HTTP). */
export function send(
  app: Requester,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
) {
  return app.request(path, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

async function created(res: Response) {
  expect(res.status, await res.clone().text()).toBe(201);
  return (await readJson(res)).data;
}

export async function signIn(app: Requester, appName: string, email: string, password = PASSWORD) {
  const res = await send(app, "POST", `/v1/apps/${appName}/tokens`, {
    body: { grant_type: "password", email, password },
  });
  expect(res.status, await res.clone().text()).toBe(200);
  const body = await readJson(res);
  return { accessToken: body.access_token as string, refreshToken: body.refresh_token as string };
}

/** An app with a role `reader` (`projects:read`), an admin user and a reader, both signed in. */
export async function createTenant(app: Requester, name: string): Promise<Tenant> {
  const tenant = await created(
    await send(app, "POST", "/v1/apps", {
      body: { name, display_name: name },
      headers: adminHeaders,
    }),
  );
  const role = await created(
    await send(app, "POST", `/v1/apps/${name}/roles`, {
      body: { name: "reader", permissions: ["projects:read"] },
      headers: adminHeaders,
    }),
  );
  const users: Record<string, { id: string; email: string }> = {};
  for (const [kind, roleName] of [
    ["admin", "admin"],
    ["reader", "reader"],
  ] as const) {
    const email = `${kind}@${name}.test`;
    users[kind] = await created(
      await send(app, "POST", `/v1/apps/${name}/users`, {
        body: { email, password: PASSWORD, role: roleName },
        headers: adminHeaders,
      }),
    );
  }
  const admin = users.admin!;
  const reader = users.reader!;
  return {
    app: { id: tenant.id, name },
    role: { id: role.id, name: role.name },
    admin: { id: admin.id, email: admin.email, ...(await signIn(app, name, admin.email)) },
    reader: { id: reader.id, email: reader.email, ...(await signIn(app, name, reader.email)) },
  };
}

/** Registers `count` devices named `<prefix>-<i>` with the tenant's admin: their ids and ingest secrets. */
export async function createDevices(
  app: Requester,
  tenant: Tenant,
  count: number,
  prefix = "tracker",
) {
  const devices: Array<{ id: string; secret: string }> = [];
  for (let i = 0; i < count; i++) {
    const res = await send(app, "POST", "/v1/devices", {
      body: { name: `${prefix}-${i}` },
      headers: bearer(tenant.admin.accessToken),
    });
    devices.push(await created(res));
  }
  return devices;
}
