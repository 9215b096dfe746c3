import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { adminHeaders, createMemoryDatabase, createTestApp } from "./support/app";
import { readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

const methods = ["get", "post", "put", "patch", "delete"] as const;

/**
 * App A's admin user (role `admin`, `*:*`) against app B: every app-scoped operation of the
 * served OpenAPI document, so a route added tomorrow is walked too. Never B's data.
 */
describe("tenant isolation", () => {
  let db: DatabasePort;
  let app: App;
  let a: Tenant;
  let b: Tenant;
  let bAuditId: string;
  const bIds: Record<string, string> = {};
  let operations: Array<{ method: string; path: string }>;

  beforeAll(async () => {
    db = await createMemoryDatabase();
    ({ app } = createTestApp({ db }));
    a = await createTenant(app, "alpha");
    b = await createTenant(app, "bravo");
    const audit = await readJson(
      await send(app, "GET", "/v1/apps/bravo/audit-logs?limit=1", { headers: adminHeaders }),
    );
    bAuditId = audit.data[0].id;
    const created = async (path: string, body: unknown) =>
      (await readJson(await send(app, "POST", path, { body, headers: adminHeaders }))).data;
    bIds.key = (await created("/v1/apps/bravo/api-keys", { name: "b", role: "api-read-only" })).id;
    bIds.credential = (
      await created("/v1/apps/bravo/credentials", { name: "b", permissions: ["x:y"] })
    ).id;
    bIds.invite = (await created("/v1/apps/bravo/invites", { email: "b@bravo.test" })).id;
    const bDevice = await created("/v1/apps/bravo/devices", { name: "b" });
    bIds.device = bDevice.id;
    const aDevice = await created("/v1/apps/alpha/devices", { name: "a" });
    for (const secret of [bDevice.secret, aDevice.secret]) {
      const point = { timestamp: "2025-11-22T08:00:00Z", latitude: 1, longitude: 2 };
      await send(app, "POST", "/v1/gps", { body: point, headers: bearer(secret) });
    }
    const doc = await readJson(await send(app, "GET", "/v1/openapi.json"));
    operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, item]) => methods.filter((m) => item[m]).map((method) => ({ method, path })),
    );
  });
  afterAll(() => db.close());

  /** B's identifiers, put into a path template. */
  function pathFor(template: string) {
    return template
      .replace("{app_name}", b.app.name)
      .replace("{user_id}", b.reader.id)
      .replace("{role_name}", b.role.name)
      .replace("{log_id}", bAuditId)
      .replace("{key_id}", bIds.key ?? "")
      .replace("{credential_id}", bIds.credential ?? "")
      .replace("{invite_id}", bIds.invite ?? "")
      .replace("{device_id}", bIds.device ?? "");
  }

  /** Required query parameters, so the answer is about tenancy, not shape. */
  const queryFor = (template: string) =>
    template.endsWith("/track") ? "?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z" : "";

  /** Bodies that pass validation, so the answer is about tenancy, not shape. */
  function bodyFor(method: string, template: string): unknown {
    if (method === "get" || method === "delete") return undefined;
    if (template.endsWith("/users"))
      return { email: "intruder@alpha.test", password: "x".repeat(12) };
    if (template.endsWith("/users/{user_id}/roles")) return { role: b.role.name };
    if (template.endsWith("/roles")) return { name: "intruder", permissions: ["*:*"] };
    if (template.endsWith("/settings")) return { access_token_ttl: 60 };
    if (template.endsWith("/api-keys")) return { name: "intruder", role: "api-full-access" };
    if (template.endsWith("/credentials")) return { name: "intruder", permissions: ["*:*"] };
    if (template.endsWith("/invites")) return { email: "intruder@alpha.test" };
    if (template.endsWith("/devices")) return { name: "intruder" };
    return {};
  }

  const bSecrets = () => [
    b.app.id,
    b.reader.id,
    b.admin.id,
    b.role.id,
    bAuditId,
    b.reader.email,
    ...Object.values(bIds),
  ];

  it("walks every app-scoped operation under /v1/apps/{app_name} with A's admin token", async () => {
    const scoped = operations.filter(
      // Token endpoints and discovery documents are public by design; everything else is guarded.
      (op) =>
        op.path.startsWith("/v1/apps/{app_name}/") &&
        !op.path.includes("/tokens") &&
        !op.path.includes("/.well-known/"),
    );
    expect(scoped.length).toBeGreaterThanOrEqual(15);
    for (const op of scoped) {
      const res = await send(
        app,
        op.method.toUpperCase(),
        `${pathFor(op.path)}${queryFor(op.path)}`,
        {
          body: bodyFor(op.method, op.path),
          headers: bearer(a.admin.accessToken),
        },
      );
      const text = await res.text();
      expect([403, 404], `${op.method} ${op.path}: ${res.status} ${text}`).toContain(res.status);
      for (const secret of bSecrets())
        expect(text, `${op.method} ${op.path}`).not.toContain(secret);
    }
  });

  it("walks every top-level app operation with B's ids under A's token: 404, never B's data", async () => {
    const topLevel = operations.filter(
      (op) =>
        !op.path.startsWith("/v1/apps") &&
        /\{(user_id|role_name|log_id|key_id|device_id)\}/.test(op.path) &&
        !op.path.includes("/me"),
    );
    expect(topLevel.length).toBeGreaterThanOrEqual(7);
    for (const op of topLevel) {
      const res = await send(
        app,
        op.method.toUpperCase(),
        `${pathFor(op.path)}${queryFor(op.path)}`,
        {
          body: bodyFor(op.method, op.path.replace("/v1", "/v1/apps/{app_name}")),
          headers: bearer(a.admin.accessToken),
        },
      );
      const text = await res.text();
      // A holds a role named like B's: by name it resolves to A's own role, never B's.
      if (op.path === "/v1/roles/{role_name}" && op.method === "get") {
        expect(res.status).toBe(200);
        expect(JSON.parse(text).data.app_id).toBe(a.app.id);
        continue;
      }
      if (op.path.startsWith("/v1/roles/{role_name}")) continue; // A's own role: not B's data
      expect(res.status, `${op.method} ${op.path}: ${text}`).toBe(404);
      for (const secret of bSecrets())
        expect(text, `${op.method} ${op.path}`).not.toContain(secret);
    }
    // Nothing of B's changed: its reader is still active and holds its role.
    const reader = await readJson(
      await send(app, "GET", `/v1/apps/bravo/users/${b.reader.id}`, { headers: adminHeaders }),
    );
    expect(reader.data).toMatchObject({ status: "active", roles: ["reader"] });
  });

  it("lists only A's own resources to A's users", async () => {
    for (const path of [
      "/v1/users",
      "/v1/roles",
      "/v1/audit-logs",
      "/v1/devices",
      "/v1/gps/current",
    ]) {
      const res = await send(app, "GET", `${path}?limit=100`, {
        headers: bearer(a.admin.accessToken),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(JSON.parse(text).data.length).toBeGreaterThan(0);
      for (const secret of bSecrets()) expect(text, path).not.toContain(secret);
    }
  });

  it("keeps a user without the permission out of their own app's management", async () => {
    const res = await send(app, "GET", "/v1/users", { headers: bearer(a.reader.accessToken) });
    expect(res.status).toBe(403);
    expect(
      (await send(app, "GET", "/v1/users/me", { headers: bearer(a.reader.accessToken) })).status,
    ).toBe(200);
  });
});
