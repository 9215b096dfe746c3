import {
  buildSchema,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLSchema,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isListType,
  isNonNullType,
  isObjectType,
} from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app";
import type { DatabasePort } from "../../src/ports";
import { adminHeaders, createTestApp } from "../support/app";
import { databaseBackends } from "../support/backends";
import { writeWatch } from "../support/fuzz";
import { readJson } from "../support/http";
import { bearer, createDevices, createTenant, send, type Tenant } from "../support/identity";
import { delegatedToken } from "../support/oauth";

/**
 * What a token issued to a third-party OAuth client reaches. The user who signs in holds `*:*`
 * and allows the client `openid profile email` only: then every operation of the served OpenAPI
 * document that authenticates a bearer token, every route outside it, and every root field of
 * the GraphQL schema refuses the token with 401/403 and writes nothing, except userinfo, the one
 * thing those scopes open. Account management (`/v1/users/me/*`: export, erasure, 2FA, sessions,
 * grants) is refused even to a token whose scopes name permissions. Operations, routes and fields
 * are read from the app, so one added tomorrow is walked too; an operation without a security
 * requirement, or a route outside the document, that the lists below do not classify fails the
 * suite.
 */

const backends = databaseBackends("the reach of OAuth clients' tokens");

const methods = ["get", "post", "put", "patch", "delete"] as const;
const REDIRECT_URI = "https://client.example/callback";

/** Operations of the document without a security requirement, and what they do with a bearer token. */
const publicOperations: Record<string, string> = {
  "get /health": "health, for anyone",
  "get /v1": "the index of the API",
  "get /v1/health": "health, for anyone",
  "get /v1/.well-known/jwks.json": "public keys",
  "get /v1/console/config": "the console's public settings",
  "post /v1/apps/{app_name}/tokens": "a grant proves itself in the body; the header is not read",
  "post /v1/apps/{app_name}/tokens/refresh": "the refresh token in the body is the credential",
  "post /v1/apps/{app_name}/tokens/revoke": "revokes the token in the body (RFC 7009)",
  "get /v1/apps/{app_name}/.well-known/jwks.json": "public keys",
  "get /v1/apps/{app_name}/.well-known/openid-configuration": "public discovery",
  "get /v1/apps/{app_name}/platforms/{name}/login": "starts a browser sign-in elsewhere",
  "get /v1/apps/{app_name}/platforms/{name}/callback": "ends a browser sign-in elsewhere",
  "post /v1/invites/{invite_token}/accept": "the invite token is the credential",
  "post /v1/apps/{app_name}/signup": "self-service sign-up, for anyone the app's policy lets in",
  "post /v1/apps/{app_name}/email/verification": "asks for a mail; answers the same for anyone",
  "post /v1/apps/{app_name}/email/verify": "the mailed token in the body is the credential",
  "post /v1/apps/{app_name}/password/forgot": "mails a reset link to the address in the body",
  "post /v1/apps/{app_name}/password/reset": "the mailed reset token in the body is the credential",
  "post /v1/apps/{app_name}/otp/start": "mails a sign-in code to the address in the body",
  "post /v1/authorize": "introspection: answers about the token in the body (checked below)",
  "post /v1/auth/validate": "introspection: answers about the token in the body (checked below)",
};

/** Routes outside the document, and what a delegated token gets there. */
const outsideRoutes: Record<string, "refused" | "userinfo" | string> = {
  "ALL /*": "the middleware every request passes through (app.use), not a route",
  "GET /v1/gql": "refused",
  "POST /v1/gql": "refused",
  "GET /v1/apps/:app_name/oauth/userinfo": "userinfo",
  "POST /v1/apps/:app_name/oauth/userinfo": "userinfo",
  "GET /v1/apps/:app_name/oauth/authorize": "the sign-in page a browser opens; reads no token",
  "POST /v1/apps/:app_name/oauth/authorize": "the sign-in form a browser posts; reads no token",
  "GET /v1/apps/:app_name/pages/signup": "the sign-up page a browser opens; reads no token",
  "POST /v1/apps/:app_name/pages/signup": "the sign-up form a browser posts; reads no token",
  "GET /v1/apps/:app_name/pages/verify-email":
    "shows a button for the mailed token; reads no header",
  "POST /v1/apps/:app_name/pages/verify-email": "the mailed token in the form is the credential",
  "GET /v1/apps/:app_name/pages/forgot-password": "a form a browser opens; reads no token",
  "POST /v1/apps/:app_name/pages/forgot-password": "the form a browser posts; reads no token",
  "GET /v1/apps/:app_name/pages/reset-password": "a form a browser opens; reads no token",
  "POST /v1/apps/:app_name/pages/reset-password": "the mailed token in the form is the credential",
  "GET /v1/schema": "the SDL, public",
  "GET /v1/docs": "the API reference page, public",
  "GET /v1/openapi.json": "the document, public",
  "GET /v1/graphiql": "a static page, public",
};

interface Operation {
  method: string;
  path: string;
  secured: boolean;
}

describe.each(backends)("OAuth clients' tokens on $name", (backend) => {
  let dispose: () => Promise<void>;
  let db: DatabasePort;
  let app: App;
  let tenant: Tenant;
  let operations: Operation[];
  let routes: string[];
  let schema: GraphQLSchema;
  /** Granted `openid profile email` by a `*:*` user. */
  let openidOnly: string;
  /** Granted `openid gps:read` by the same user. */
  let gpsReader: string;
  let params: Record<string, string>;

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    const test = createTestApp({ db });
    app = test.app;
    tenant = await createTenant(app, "reach");
    const client = await send(app, "POST", "/v1/apps/reach/oauth/clients", {
      body: {
        name: "Third party",
        type: "public",
        redirect_uris: [REDIRECT_URI],
        scopes: ["openid", "profile", "email", "gps:read"],
      },
      headers: adminHeaders,
    });
    expect(client.status, await client.clone().text()).toBe(201);
    const clientId = (await readJson(client)).data.client_id as string;
    const flow = {
      appName: "reach",
      clientId,
      redirectUri: REDIRECT_URI,
      email: tenant.admin.email,
    };
    openidOnly = (await delegatedToken(app, { ...flow, scope: "openid profile email" }))
      .accessToken;
    gpsReader = (await delegatedToken(app, { ...flow, scope: "openid gps:read" })).accessToken;
    const [device] = await createDevices(app, tenant, 1);
    const own = bearer(tenant.admin.accessToken);
    const sessions = await readJson(
      await send(app, "GET", "/v1/users/me/sessions", { headers: own }),
    );
    const grants = await readJson(await send(app, "GET", "/v1/users/me/grants", { headers: own }));
    // Real ids where the tenant has them; a refusal must come before any lookup anyway.
    params = {
      app_name: "reach",
      user_id: tenant.admin.id,
      role_name: "admin",
      device_id: device?.id ?? "dev_x",
      session_id: sessions.data[0].id,
      grant_id: grants.data[0].id,
      client_id: clientId,
    };

    const doc = await readJson(await send(app, "GET", "/v1/openapi.json"));
    operations = Object.entries(
      doc.paths as Record<string, Record<string, { security?: unknown[] } | undefined>>,
    ).flatMap(([path, item]) =>
      methods.flatMap((method) => {
        const op = item[method];
        return op ? [{ method, path, secured: (op.security ?? []).length > 0 }] : [];
      }),
    );
    const documented = new Set(
      operations.map((op) => `${op.method.toUpperCase()} ${op.path.replace(/\{(\w+)\}/g, ":$1")}`),
    );
    routes = [...new Set(test.app.routes.map((r) => `${r.method} ${r.path}`))]
      .filter((route) => !documented.has(route))
      .sort();
    schema = buildSchema(await (await send(app, "GET", "/v1/schema")).text());
  });
  afterAll(() => dispose());

  const fill = (path: string) =>
    path.replace(/\{(\w+)\}/g, (_, name: string) =>
      encodeURIComponent(params[name] ?? `${name}-x`),
    );

  it("classifies every operation without a security requirement and every route outside the document", () => {
    const unclassified = [
      ...operations
        .filter((op) => !op.secured && !(`${op.method} ${op.path}` in publicOperations))
        .map((op) => `${op.method} ${op.path}`),
      ...routes.filter((route) => !(route in outsideRoutes)),
    ];
    expect(unclassified).toEqual([]);
    const stale = [
      ...Object.keys(publicOperations).filter(
        (key) => !operations.some((op) => `${op.method} ${op.path}` === key && !op.secured),
      ),
      ...Object.keys(outsideRoutes).filter((route) => !routes.includes(route)),
    ];
    expect(stale, "classified but gone").toEqual([]);
  });

  it("refuses an `openid profile email` token on every secured operation of the document, and it writes nothing", async () => {
    const watch = await writeWatch(db);
    const secured = operations.filter((op) => op.secured);
    expect(secured.length).toBeGreaterThanOrEqual(100);
    const failures: string[] = [];
    const statuses: Record<number, number> = {};
    for (const op of secured) {
      const before = await watch.snapshot();
      const res = await send(app, op.method.toUpperCase(), fill(op.path), {
        body: op.method === "get" || op.method === "delete" ? undefined : {},
        headers: bearer(openidOnly),
      });
      const text = await res.text();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const label = `${op.method.toUpperCase()} ${op.path} → ${res.status} ${text.slice(0, 200)}`;
      if (![401, 403].includes(res.status)) failures.push(label);
      else if (JSON.parse(text).error?.code === undefined) failures.push(`${label} (error shape)`);
      const { written } = await watch.after(before);
      if (written.length > 0) failures.push(`${label} wrote ${written.join(", ")}`);
    }
    console.info(
      `[reach:${backend.name}] ${secured.length} secured operations with an openid-only token: ${JSON.stringify(statuses)}`,
    );
    expect(failures).toEqual([]);
  });

  it("refuses account management to a token whose scopes name a permission, and opens what they name", async () => {
    const account = operations.filter(
      (op) => op.secured && /^\/v1\/users?\/(me|export)/.test(op.path),
    );
    expect(account.map((op) => `${op.method} ${op.path}`)).toEqual(
      expect.arrayContaining([
        "get /v1/users/me",
        "get /v1/user/export",
        "delete /v1/users/me",
        "get /v1/users/me/sessions",
        "delete /v1/users/me/sessions",
        "get /v1/users/me/grants",
        "post /v1/users/me/2fa",
      ]),
    );
    const watch = await writeWatch(db);
    for (const op of account) {
      const before = await watch.snapshot();
      const res = await send(app, op.method.toUpperCase(), fill(op.path), {
        body: op.method === "get" || op.method === "delete" ? undefined : {},
        headers: bearer(gpsReader),
      });
      expect(res.status, `${op.method} ${op.path}: ${await res.clone().text()}`).toBe(403);
      expect((await watch.after(before)).written).toEqual([]);
    }
    const current = await send(app, "GET", "/v1/gps/current", { headers: bearer(gpsReader) });
    expect(current.status).toBe(200);
    const ticket = await send(app, "POST", "/v1/ws/ticket", { headers: bearer(gpsReader) });
    expect(ticket.status).toBe(201);
    expect((await send(app, "GET", "/v1/devices", { headers: bearer(gpsReader) })).status).toBe(
      403,
    );
  });

  it("opens userinfo, and nothing else outside the document", async () => {
    const watch = await writeWatch(db);
    for (const route of routes) {
      const kind = outsideRoutes[route];
      if (kind !== "refused" && kind !== "userinfo") continue;
      const [method = "GET", path = ""] = route.split(" ");
      const url = path.replace(/:(\w+)/g, (_, name: string) => params[name] ?? `${name}-x`);
      const before = await watch.snapshot();
      const search = path.endsWith("/gql") && method === "GET" ? "?query=%7B__typename%7D" : "";
      const res = await send(app, method, `${url}${search}`, {
        body: method === "POST" ? { query: "{ __typename }" } : undefined,
        headers: bearer(openidOnly),
      });
      const text = await res.text();
      if (kind === "userinfo") {
        expect(res.status, `${route}: ${text}`).toBe(200);
        expect(JSON.parse(text)).toEqual({
          sub: tenant.admin.id,
          email: tenant.admin.email,
          email_verified: false,
          updated_at: expect.any(Number),
        });
      } else if (res.status === 200) {
        // GraphQL answers in its own shape: `{ __typename }` names nothing of the app.
        expect(JSON.parse(text), route).toEqual({ data: { __typename: "Query" } });
      } else {
        expect([401, 403], `${route}: ${text}`).toContain(res.status);
      }
      expect((await watch.after(before)).written, route).toEqual([]);
    }
  });

  /** Arguments GraphQL accepts for `type`, so a resolver runs and its own checks answer. */
  function literal(type: GraphQLInputType): string {
    if (isNonNullType(type)) return literal(type.ofType);
    if (isListType(type)) return `[${literal(type.ofType)}]`;
    if (isEnumType(type)) return type.getValues()[0]?.name ?? "";
    if (isInputObjectType(type)) {
      const fields = Object.values(type.getFields()).filter((f) => isNonNullType(f.type));
      return `{${fields.map((f) => `${f.name}: ${literal(f.type)}`).join(", ")}}`;
    }
    switch (type.name) {
      case "Int":
        return "1";
      case "Float":
        return "1.5";
      case "Boolean":
        return "true";
      case "DateTime":
        return '"2026-11-23T10:00:00Z"';
      case "JSON":
        return "{}";
      default:
        return '"x"';
    }
  }

  const operationOf = (keyword: string, field: GraphQLField<unknown, unknown>) => {
    const args = field.args.filter((a) => isNonNullType(a.type));
    const list =
      args.length > 0 ? `(${args.map((a) => `${a.name}: ${literal(a.type)}`).join(", ")})` : "";
    const selection = isObjectType(getNamedType(field.type)) ? " { __typename }" : "";
    return `${keyword} { ${field.name}${list}${selection} }`;
  };

  it("refuses an `openid profile email` token on every root field of the GraphQL schema, and it writes nothing", async () => {
    const roots = [
      ["query", schema.getQueryType()],
      ["mutation", schema.getMutationType()],
      ["subscription", schema.getSubscriptionType()],
    ] as const;
    const watch = await writeWatch(db);
    const failures: string[] = [];
    let fields = 0;
    for (const [keyword, type] of roots) {
      for (const field of Object.values(type?.getFields() ?? {})) {
        fields++;
        const query = operationOf(keyword, field);
        const before = await watch.snapshot();
        const res = await send(app, "POST", "/v1/gql", {
          body: { query },
          headers: {
            ...bearer(openidOnly),
            ...(keyword === "subscription" ? { Accept: "text/event-stream" } : {}),
          },
        });
        // A refused subscription's stream carries its error and ends.
        const text = await res.text();
        const payload = keyword === "subscription" ? subscriptionResult(text) : JSON.parse(text);
        const codes = (payload?.errors ?? []).map(
          (e: { extensions?: { code?: string } }) => e.extensions?.code,
        );
        if (res.status >= 500 || !codes.length || codes.some((c: string) => c !== "FORBIDDEN")) {
          failures.push(`${query} → ${res.status} ${text.slice(0, 300)}`);
        }
        if (payload?.data?.[field.name]) failures.push(`${query} answered data: ${text}`);
        const { written } = await watch.after(before);
        if (written.length > 0) failures.push(`${query} wrote ${written.join(", ")}`);
      }
    }
    expect(fields).toBeGreaterThanOrEqual(30);
    console.info(`[reach:${backend.name}] ${fields} GraphQL root fields with an openid-only token`);
    expect(failures).toEqual([]);
    // The control: what a scope names is open through GraphQL as through REST.
    const res = await send(app, "POST", "/v1/gql", {
      body: { query: "{ currentPositions { __typename } }" },
      headers: bearer(gpsReader),
    });
    expect(await readJson(res)).toEqual({ data: { currentPositions: [] } });
  });

  /** The first `next` event of a Server-Sent Events answer. */
  function subscriptionResult(text: string) {
    const data = /event: next\ndata: (.*)\n/.exec(text)?.[1];
    return data ? JSON.parse(data) : undefined;
  }

  it("introspection tells a client's token apart: no user from validate, no account permission from authorize", async () => {
    const validate = await send(app, "POST", "/v1/auth/validate", { body: { token: openidOnly } });
    expect(await readJson(validate)).toEqual({ valid: true });
    const authorize = await send(app, "POST", "/v1/authorize", {
      body: { token: openidOnly, permission: "users:read" },
    });
    expect(await readJson(authorize)).toMatchObject({
      allowed: false,
      reason: "missing_permission",
      permissions: [],
    });
    // A first-party token is described as before.
    const own = await send(app, "POST", "/v1/auth/validate", {
      body: { token: tenant.admin.accessToken },
    });
    expect(await readJson(own)).toMatchObject({
      valid: true,
      user: { id: tenant.admin.id, email: tenant.admin.email },
    });
  });
});
