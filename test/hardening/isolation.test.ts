import { ulid } from "ulidx";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app";
import { oauthGrants } from "../../src/db/schema";
import { newId } from "../../src/lib/ids";
import type { DatabasePort } from "../../src/ports";
import { adminHeaders, createTestApp } from "../support/app";
import { databaseBackends } from "../support/backends";
import { readJson } from "../support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "../support/identity";

/**
 * Tenant isolation over the served OpenAPI document: every operation that takes an app name or
 * an id, called with four credentials of app A (a plain user's token, an API key with full
 * access, a service credential's token with `*:*`, the token of A's admin user) against app B's
 * names and ids, answers 401/403/404, as it does for an id that never existed, and never shows
 * anything of B's. Operations are read from the document, so a route added tomorrow is walked
 * too, and one whose path parameter the walk cannot fill fails the suite instead of being
 * skipped.
 */

const backends = databaseBackends("tenant isolation walk");

const methods = ["get", "post", "put", "patch", "delete"] as const;

/** What the walk reads of the OpenAPI document. */
interface JsonSchema {
  $ref?: string;
  properties?: Record<string, unknown>;
}
interface DocumentOperation {
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string }>;
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
interface OpenApiDocument {
  paths: Record<string, Record<string, DocumentOperation | undefined>>;
  components: { schemas: Record<string, JsonSchema> };
}
interface Operation {
  method: string;
  path: string;
  secured: boolean;
  /** Tracker ingest: a device secret (or a token) says whose positions these are. */
  tracker: boolean;
  pathParams: string[];
  queryParams: string[];
  bodyProps: string[];
}

/**
 * Operations without a `security` requirement that take a name or an id, public by design:
 * the token endpoints (the caller proves itself in the body; checked below with A's
 * credentials), an app's public discovery documents, the start of a sign-in with an external
 * provider, accepting an invite (its token is the credential), and self-service sign-up with
 * its email verification (anyone may ask; a mailed token is the credential).
 */
const publicByDesign = new Set([
  "post /v1/apps/{app_name}/tokens",
  "post /v1/apps/{app_name}/tokens/refresh",
  "post /v1/apps/{app_name}/tokens/revoke",
  "get /v1/apps/{app_name}/.well-known/jwks.json",
  "get /v1/apps/{app_name}/.well-known/openid-configuration",
  "get /v1/apps/{app_name}/platforms/{name}/login",
  "get /v1/apps/{app_name}/platforms/{name}/callback",
  "post /v1/invites/{invite_token}/accept",
  "post /v1/apps/{app_name}/signup",
  "post /v1/apps/{app_name}/email/verification",
  "post /v1/apps/{app_name}/email/verify",
  // Anyone may ask for a reset link or a sign-in code; the mailed secret is the credential.
  "post /v1/apps/{app_name}/password/forgot",
  "post /v1/apps/{app_name}/password/reset",
  "post /v1/apps/{app_name}/otp/start",
  // Takes an app name in its body: checked below with A's token asking about B.
  "post /v1/authorize",
]);

/** Documented query parameters holding an id, and which of a tenant's ids fills each. */
const queryIds: Record<string, string> = {
  device_id: "device_id",
  actor_id: "user_id",
  target_id: "user_id",
};

/** Ids the caller chooses for itself (a tracker's own id, a provider's client id), not references. */
const labels = new Set(["external_id", "client_id"]);

/** Body fields that name another resource; an operation with one must be in `bodies` below. */
const isReference = (prop: string) =>
  /_id$|^app$|^roles?$|^points$/.test(prop) && !labels.has(prop);

/** One tenant and the resources the walk addresses: a value for every path parameter. */
interface Seeded {
  tenant: Tenant;
  /** An API key of the app with the built-in `api-full-access` role (`*:*`). */
  apiKey: string;
  /** A service credential holding `*:*`. */
  service: { clientId: string; clientSecret: string };
  externalId: string;
  params: Record<string, string>;
  /** What of the tenant must never appear in another tenant's answers. */
  marks: string[];
}

type Credential = { kind: string; headers: Record<string, string> };

describe.each(backends)("tenant isolation on $name", (backend) => {
  let dispose: () => Promise<void>;
  let db: DatabasePort;
  let app: App;
  let a: Seeded;
  let b: Seeded;
  let operations: Operation[];
  let credentials: Credential[];

  async function created(path: string, body: unknown, headers: Record<string, string>) {
    const res = await send(app, "POST", path, { body, headers });
    expect(res.status, `${path}: ${await res.clone().text()}`).toBe(201);
    return (await readJson(res)).data;
  }

  /** The first item of a list `path` answers to `headers`. */
  async function first(path: string, headers: Record<string, string>) {
    const res = await send(app, "GET", path, { headers });
    expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
    const item = (await readJson(res)).data[0];
    expect(item, path).toBeDefined();
    return item;
  }

  /** A tenant with one of everything an id can name: role, key, device, position, grant… */
  async function seed(name: string): Promise<Seeded> {
    const tenant = await createTenant(app, name);
    const scoped = `/v1/apps/${name}`;
    const own = bearer(tenant.admin.accessToken);
    const role = await created(
      `${scoped}/roles`,
      { name: `${name}-only`, permissions: ["projects:read"] },
      adminHeaders,
    );
    const key = await created(
      `${scoped}/api-keys`,
      { name: `${name}-key`, role: "api-full-access" },
      adminHeaders,
    );
    const credential = await created(
      `${scoped}/credentials`,
      { name: `${name}-service`, permissions: ["*:*"] },
      adminHeaders,
    );
    const invite = await created(
      `${scoped}/invites`,
      { email: `invitee@${name}.test` },
      adminHeaders,
    );
    const externalId = `${name}-tracker`;
    const device = await created(
      `${scoped}/devices`,
      { name: `${name}-phone`, external_id: externalId },
      adminHeaders,
    );
    const point = { timestamp: "2026-11-23T09:00:00Z", latitude: 52.5, longitude: 13.4 };
    const posted = await send(app, "POST", "/v1/gps", {
      body: point,
      headers: bearer(device.secret),
    });
    expect(posted.status, await posted.clone().text()).toBe(201);
    const position = await first("/v1/gps?limit=1", own);
    const platform = await created(
      `${scoped}/platforms`,
      {
        name: `${name}-op`,
        display_name: `${name} OP`,
        issuer: `https://op.${name}.test`,
        client_id: `${name}-op-client`,
      },
      adminHeaders,
    );
    const client = await created(
      `${scoped}/oauth/clients`,
      {
        name: `${name}-client`,
        type: "public",
        redirect_uris: [`https://${name}.test/callback`],
        scopes: ["openid"],
      },
      adminHeaders,
    );
    // A grant is recorded by the HTML consent page; the row it writes stands in for it here.
    const grantId = newId("grt");
    const session = db.session();
    try {
      await session.db.insert(oauthGrants).values({
        id: grantId,
        app_id: tenant.app.id,
        user_id: tenant.admin.id,
        client_id: client.id,
        scopes: ["openid"],
      });
    } finally {
      await session.release();
    }
    const signedIn = await first("/v1/users/me/sessions", own);
    const log = await first(`${scoped}/audit-logs?limit=1`, adminHeaders);
    const banned = await created(
      `${scoped}/users`,
      { email: `banned@${name}.test`, password: PASSWORD },
      adminHeaders,
    );
    const ban = await created(
      "/v1/admin/bans",
      { user_id: banned.id, reason: `${name} isolation fixture` },
      adminHeaders,
    );
    const report = await created(
      "/v1/admin/audit/reports",
      {
        name: `${name} report`,
        from: "2026-01-01T00:00:00Z",
        to: "2027-01-01T00:00:00Z",
        app: name,
      },
      adminHeaders,
    );
    const params = {
      app_name: name,
      user_id: tenant.reader.id,
      role_name: role.name,
      log_id: log.id,
      key_id: key.id,
      credential_id: credential.id,
      invite_id: invite.id,
      device_id: device.id,
      position_id: position.id,
      session_id: signedIn.id,
      grant_id: grantId,
      platform_id: platform.id,
      client_id: client.id,
      ban_id: ban.id,
      report_id: report.id,
      name: platform.name,
      invite_token: invite.token,
    } satisfies Record<string, string>;
    for (const [param, value] of Object.entries(params)) expect(value, param).toMatch(/^[\w-]+$/);
    return {
      tenant,
      apiKey: key.key,
      service: { clientId: credential.client_id, clientSecret: credential.client_secret },
      externalId,
      params,
      marks: [
        name,
        tenant.app.id,
        tenant.admin.id,
        tenant.admin.email,
        tenant.reader.id,
        tenant.reader.email,
        tenant.role.id,
        role.id,
        banned.id,
        key.key,
        credential.client_id,
        credential.client_secret,
        device.secret,
        ...Object.values(params),
      ],
    };
  }

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    ({ app } = createTestApp({ db }));
    a = await seed("alpha");
    b = await seed("bravo");
    const service = await send(app, "POST", "/v1/apps/alpha/tokens", {
      body: {
        grant_type: "client_credentials",
        client_id: a.service.clientId,
        client_secret: a.service.clientSecret,
      },
    });
    expect(service.status, await service.clone().text()).toBe(200);
    credentials = [
      { kind: "A's plain user (role reader)", headers: bearer(a.tenant.reader.accessToken) },
      { kind: "A's API key (api-full-access)", headers: { "X-API-Key": a.apiKey } },
      {
        kind: "A's service credential (*:*)",
        headers: bearer((await readJson(service)).access_token),
      },
      { kind: "A's admin user", headers: bearer(a.tenant.admin.accessToken) },
    ];
    const doc: OpenApiDocument = await readJson(await send(app, "GET", "/v1/openapi.json"));
    const schemaOf = (schema: JsonSchema | undefined) =>
      schema?.$ref ? doc.components.schemas[schema.$ref.split("/").pop() ?? ""] : schema;
    operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      methods.flatMap((method) => {
        const op = item[method];
        if (!op) return [];
        const params = op.parameters ?? [];
        const body = schemaOf(op.requestBody?.content?.["application/json"]?.schema);
        return [
          {
            method,
            path,
            secured: (op.security ?? []).length > 0,
            tracker: (op.security ?? []).some((requirement) => "deviceKey" in requirement),
            pathParams: params.filter((p) => p.in === "path").map((p) => p.name),
            queryParams: params.filter((p) => p.in === "query").map((p) => p.name),
            bodyProps: Object.keys(body?.properties ?? {}),
          },
        ];
      }),
    );
  });
  afterAll(() => dispose());

  /** A value no tenant holds, in the shape of `value` (an id keeps its prefix). */
  const ghost = (value: string) =>
    /^[a-z]+_[0-9A-Z]{26}$/.test(value) ? `${value.split("_")[0]}_${ulid()}` : `ghost-${value}`;

  /** The path of `op` with `params` put in. */
  const fill = (op: Operation, params: Record<string, string>) =>
    op.path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));

  /**
   * What the walk sends besides the path: documented id filters, required query parameters,
   * and bodies that pass validation and name the target tenant's resources where they can.
   */
  function requestFor(op: Operation, target: Seeded["params"], externalId: string) {
    const query = new URLSearchParams();
    for (const param of op.queryParams) {
      const source = queryIds[param];
      if (source) query.set(param, target[source] ?? "");
    }
    if (op.path.endsWith("/track")) {
      query.set("from", "2026-01-01T00:00:00Z");
      query.set("to", "2027-01-01T00:00:00Z");
    }
    const point = {
      device_id: target.device_id,
      timestamp: "2026-11-23T09:30:00Z",
      latitude: 1,
      longitude: 2,
    };
    const unix = String(Date.parse(point.timestamp) / 1000);
    const tracker = { lat: "1", lon: "2" };
    const named = { name: "intruder" };
    const labelled = { display_name: "intruder" };
    const bodies: Record<string, unknown> = {
      "patch /v1/apps/{app_name}": labelled,
      "post /v1/admin/bans": { user_id: target.user_id, reason: "intruder" },
      "post /v1/admin/audit/reports": {
        name: "intruder",
        from: "2026-01-01T00:00:00Z",
        to: "2027-01-01T00:00:00Z",
        app: target.app_name,
        actor_id: target.user_id,
      },
      "post /v1/gps": point,
      "post /v1/gps/batch": { points: [point] },
      "post /v1/gps/owntracks": { _type: "location", lat: 1, lon: 2, tst: Number(unix) },
      "post /v1/gps/overland": {
        locations: [
          {
            type: "Feature",
            geometry: { type: "Point", coordinates: [2, 1] },
            properties: { timestamp: point.timestamp, device_id: externalId },
          },
        ],
      },
      "post /v1/users": {
        email: "intruder@alpha.test",
        password: PASSWORD,
        role: target.role_name,
      },
      "patch /v1/users/{user_id}": labelled,
      "post /v1/users/{user_id}/roles": { role: target.role_name },
      "post /v1/roles": { name: "intruder", permissions: ["*:*"] },
      "patch /v1/roles/{role_name}": labelled,
      "patch /v1/settings": { access_token_ttl: 60 },
      "post /v1/api-keys": { name: "intruder", role: target.role_name },
      "post /v1/credentials": { name: "intruder", permissions: ["*:*"] },
      "patch /v1/credentials/{credential_id}": named,
      "post /v1/invites": { email: "intruder@alpha.test", role: target.role_name },
      "post /v1/devices": named,
      "patch /v1/devices/{device_id}": named,
      "post /v1/platforms": {
        name: "intruder",
        display_name: "Intruder",
        issuer: "https://op.intruder.test",
        client_id: "intruder",
      },
      "patch /v1/platforms/{platform_id}": labelled,
      "post /v1/oauth/clients": {
        name: "intruder",
        type: "public",
        redirect_uris: ["https://intruder.test/callback"],
        scopes: ["openid"],
      },
      "patch /v1/oauth/clients/{client_id}": named,
    };
    const trackerQueries: Record<string, Record<string, string>> = {
      "/v1/gps/osmand": { id: externalId, timestamp: unix, ...tracker },
      "/v1/gps/gpslogger": { device: externalId, time: point.timestamp, ...tracker },
    };
    for (const [name, value] of Object.entries(trackerQueries[op.path] ?? {}))
      query.set(name, value);
    const headers: Record<string, string> =
      op.path === "/v1/gps/owntracks" ? { "X-Limit-D": externalId } : {};
    // The same body under either mount: `/v1/apps/{app_name}/users` takes `/v1/users`'s.
    const key = `${op.method} ${op.path.replace("/v1/apps/{app_name}/", "/v1/")}`;
    const body = op.method === "get" || op.method === "delete" ? undefined : (bodies[key] ?? {});
    const search = query.size > 0 ? `?${query}` : "";
    return { url: `${fill(op, target)}${search}`, body, headers, known: key in bodies };
  }

  /**
   * The operations the walk covers: every one taking a path parameter, an id filter or a body
   * naming another resource, or fed by a tracker's id, except the public ones above.
   */
  function walked() {
    return operations.filter(
      (op) =>
        !publicByDesign.has(`${op.method} ${op.path}`) &&
        (op.pathParams.length > 0 ||
          op.queryParams.some((p) => p in queryIds) ||
          op.bodyProps.some(isReference) ||
          op.tracker),
    );
  }

  it("knows every path parameter, id filter and referencing body of the document", () => {
    const unknown: string[] = [];
    for (const op of operations) {
      for (const param of op.pathParams)
        if (!(param in b.params)) unknown.push(`${op.method} ${op.path}: path {${param}}`);
      for (const param of op.queryParams)
        if (/_id$/.test(param) && !(param in queryIds))
          unknown.push(`${op.method} ${op.path}: query ${param}`);
      const refs = op.bodyProps.filter(isReference);
      if (
        refs.length > 0 &&
        !publicByDesign.has(`${op.method} ${op.path}`) &&
        !requestFor(op, b.params, b.externalId).known
      )
        unknown.push(`${op.method} ${op.path}: body ${refs.join(", ")}`);
      if (op.pathParams.length > 0 && !op.secured && !publicByDesign.has(`${op.method} ${op.path}`))
        unknown.push(`${op.method} ${op.path}: takes an id without a security requirement`);
    }
    expect(unknown).toEqual([]);
  });

  it("answers 401/403/404 to A's user, API key, service and admin for every operation on B's names and ids, as for ids that never existed, and shows nothing of B's", async () => {
    const before = await snapshot(b);
    const ops = walked();
    expect(ops.length).toBeGreaterThanOrEqual(90);
    const ghosts = Object.fromEntries(Object.entries(b.params).map(([k, v]) => [k, ghost(v)]));
    const failures: string[] = [];
    const statuses: Record<number, number> = {};
    let cases = 0;
    for (const credential of credentials) {
      for (const op of ops) {
        const call = async (params: Record<string, string>, externalId: string) => {
          const request = requestFor(op, params, externalId);
          const res = await send(app, op.method.toUpperCase(), request.url, {
            body: request.body,
            headers: { ...request.headers, ...credential.headers },
          });
          const sent = `${request.url} ${JSON.stringify(request.body)} ${JSON.stringify(request.headers)}`;
          const echoes = Object.entries({ ...params, external_id: externalId })
            .filter(([, value]) => sent.includes(value))
            .sort(([, x], [, y]) => y.length - x.length);
          return { status: res.status, text: await res.text(), echoes };
        };
        const against = await call(b.params, b.externalId);
        const never = await call(ghosts, `ghost-${b.externalId}`);
        cases++;
        statuses[against.status] = (statuses[against.status] ?? 0) + 1;
        const label = `${credential.kind}: ${op.method.toUpperCase()} ${op.path} → ${against.status} ${against.text.slice(0, 300)}`;
        if (!allowed(op, against)) failures.push(`${label} (status)`);
        // What the caller sent may come back (`No role named …`, `_links.self`); nothing else.
        const seen = masked(against.text, against.echoes);
        if (seen !== masked(never.text, never.echoes) || against.status !== never.status)
          failures.push(`${label} (an id that never existed gets ${never.status} ${never.text})`);
        for (const mark of b.marks)
          if (seen.includes(mark)) failures.push(`${label} (shows B's ${mark})`);
      }
    }
    console.info(
      `[isolation:${backend.name}] ${cases} cases (${ops.length} operations × ${credentials.length} credentials of A), statuses ${JSON.stringify(statuses)}`,
    );
    expect(failures).toEqual([]);
    expect(await snapshot(b)).toEqual(before);
  });

  /**
   * 401/403/404; where B's ids are only in a filter or a body (no path parameter of B's), also
   * a 400 naming the field, or an empty page of the caller's own list.
   */
  function allowed(op: Operation, answer: { status: number; text: string }) {
    if ([401, 403, 404].includes(answer.status)) return true;
    if (op.pathParams.length > 0) return false;
    if (answer.status === 400) return true;
    return (
      answer.status === 200 && op.method === "get" && JSON.parse(answer.text).data?.length === 0
    );
  }

  /** `text` with the values the caller sent named instead, and without its request id. */
  const masked = (text: string, echoes: Array<[string, string]>) =>
    echoes
      .reduce((out, [name, value]) => out.replaceAll(value, `{${name}}`), text)
      .replace(/"request_id":"[^"]*"/, '"request_id":"…"');

  /** Everything of B's the walk might touch, read as the platform admin and as B's own admin. */
  async function snapshot(target: Seeded) {
    const scoped = `/v1/apps/${target.params.app_name}`;
    const own = bearer(target.tenant.admin.accessToken);
    const reads: Array<[string, Record<string, string>]> = [
      [scoped, adminHeaders],
      ...[
        "users",
        "roles",
        "api-keys",
        "credentials",
        "invites",
        "devices",
        "platforms",
        "oauth/clients",
        "settings",
        "audit-logs",
      ].map((path): [string, Record<string, string>] => [
        `${scoped}/${path}${path === "settings" ? "" : "?limit=100"}`,
        adminHeaders,
      ]),
      [`/v1/admin/bans/${target.params.ban_id}`, adminHeaders],
      [`/v1/admin/audit/reports/${target.params.report_id}`, adminHeaders],
      ["/v1/users/me/sessions", own],
      ["/v1/users/me/grants", own],
      ["/v1/gps?limit=100", own],
    ];
    const out: Record<string, unknown> = {};
    for (const [path, headers] of reads) {
      const res = await send(app, "GET", path, { headers });
      out[path] = { status: res.status, body: await readJson(res) };
    }
    return out;
  }

  it("answers A's credentials for A's own resources (the control: refusals above are about tenancy)", async () => {
    const [user, key, service, admin] = credentials as [
      Credential,
      Credential,
      Credential,
      Credential,
    ];
    const me = await send(app, "GET", "/v1/users/me", { headers: user.headers });
    expect(me.status).toBe(200);
    expect((await readJson(me)).data.id).toBe(a.tenant.reader.id);
    // A plain user is still kept out of their own app's management.
    expect((await send(app, "GET", "/v1/users", { headers: user.headers })).status).toBe(403);

    const reads = walked().filter(
      (op) =>
        op.method === "get" &&
        op.secured &&
        !op.path.startsWith("/v1/apps/") &&
        !op.path.startsWith("/v1/admin/"),
    );
    expect(reads.length).toBeGreaterThanOrEqual(10);
    let cases = 0;
    for (const credential of [key, service, admin]) {
      for (const op of reads) {
        const request = requestFor(op, a.params, a.externalId);
        const res = await send(app, "GET", request.url, { headers: credential.headers });
        const text = await res.text();
        expect(res.status, `${credential.kind}: GET ${request.url}: ${text}`).toBe(200);
        const named = op.pathParams.map((p) => a.params[p] ?? "");
        for (const id of named) expect(text, `GET ${request.url}`).toContain(id);
        cases++;
      }
    }
    // A holds a role named like B's (`reader`): by name it resolves to A's own.
    const role = await send(app, "GET", `/v1/roles/${b.tenant.role.name}`, {
      headers: admin.headers,
    });
    expect(role.status).toBe(200);
    expect((await readJson(role)).data.app_id).toBe(a.tenant.app.id);
    console.info(`[isolation:${backend.name}] ${cases} control reads of A's own resources`);
  });

  it("lists only A's own resources to A's API key, service and admin", async () => {
    for (const credential of credentials.slice(1)) {
      for (const path of [
        "/v1/users",
        "/v1/roles",
        "/v1/audit-logs",
        "/v1/api-keys",
        "/v1/devices",
        "/v1/platforms",
        "/v1/oauth/clients",
        "/v1/gps",
        "/v1/gps/current",
      ]) {
        const res = await send(app, "GET", `${path}?limit=100`, { headers: credential.headers });
        const text = await res.text();
        expect(res.status, `${credential.kind}: ${path}: ${text}`).toBe(200);
        expect(JSON.parse(text).data.length, path).toBeGreaterThan(0);
        for (const mark of b.marks) expect(text, `${credential.kind}: ${path}`).not.toContain(mark);
      }
    }
  });

  it("gives A's credentials nothing at B's public token endpoints", async () => {
    const tokens = `/v1/apps/${b.params.app_name}/tokens`;
    const attempts: Array<[string, unknown]> = [
      [tokens, { grant_type: "password", email: a.tenant.admin.email, password: PASSWORD }],
      [`${tokens}/refresh`, { refresh_token: a.tenant.reader.refreshToken }],
      [tokens, { grant_type: "refresh_token", refresh_token: a.tenant.reader.refreshToken }],
      [
        tokens,
        {
          grant_type: "client_credentials",
          client_id: a.service.clientId,
          client_secret: a.service.clientSecret,
        },
      ],
    ];
    for (const [path, body] of attempts) {
      const res = await send(app, "POST", path, { body });
      const text = await res.text();
      expect([400, 401], `${path}: ${text}`).toContain(res.status);
      expect(text).not.toContain("access_token");
      for (const mark of b.marks.filter((m) => m !== b.params.app_name))
        expect(text, path).not.toContain(mark);
    }
    // A's token asked about app B is not allowed anything there.
    const authorize = await send(app, "POST", "/v1/authorize", {
      body: { token: a.tenant.admin.accessToken, permission: "users:read", app: b.params.app_name },
    });
    expect(authorize.status).toBe(200);
    expect(await readJson(authorize)).toMatchObject({ allowed: false });
  });
});
