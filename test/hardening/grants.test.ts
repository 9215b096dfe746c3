import {
  buildSchema,
  type GraphQLInputType,
  type GraphQLSchema,
  getNamedType,
  isInputObjectType,
} from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/app";
import type { DatabasePort } from "../../src/ports";
import { findAppByName } from "../../src/services/apps";
import type { ServiceContext, Services } from "../../src/services/context";
import { createCredential, updateCredential } from "../../src/services/credentials";
import { createInvite } from "../../src/services/invites";
import { adminHeaders, createTestApp } from "../support/app";
import { databaseBackends } from "../support/backends";
import { writeWatch } from "../support/fuzz";
import { readJson } from "../support/http";
import { bearer, createTenant, PASSWORD, send, signIn, type Tenant } from "../support/identity";

/**
 * Nobody hands out a permission they do not hold. Every operation of the served OpenAPI
 * document whose body hands out permissions (a `permissions`, `role`, `roles` or `scopes` field:
 * roles, role assignment, users, API keys, service credentials, invites, OAuth clients) and
 * every GraphQL mutation with such an argument is called by a caller holding the write
 * permission and `gps:read` but not `gps:write`: handing out `gps:write` is 403 and writes
 * nothing; handing out `gps:read`, exactly what it holds, succeeds; the platform admin hands out
 * anything on the `/v1/apps/{app_name}` mount. Operations and fields are read from the app, so a
 * new one with such a field is walked too, and one the walk has no body for fails the suite.
 */

const backends = databaseBackends("the walk of grant-handing operations");

const methods = ["get", "post", "put", "patch", "delete"] as const;
const GRANT_FIELDS = /^(permissions|roles?|scopes)$/;
const HELD = "gps:read";
const NOT_HELD = "gps:write";

/** Operations with such a field that hand out nothing of Heimdall's, and why. */
const notGrants: Record<string, string> = {
  "post /v1/platforms": "scopes asked of an external identity provider",
  "patch /v1/platforms/{platform_id}": "scopes asked of an external identity provider",
};

interface JsonSchema {
  $ref?: string;
  properties?: Record<string, unknown>;
}

/** A grant, as the walk hands it out: a permission, or the role holding just it. */
interface Grant {
  permission: string;
  role: string;
  n: number;
}

/** The bodies, keyed by the top-level mount's `method path`. */
const bodies: Record<string, (grant: Grant) => Record<string, unknown>> = {
  "post /v1/users": (g) => ({ email: `u${g.n}@grants.test`, password: PASSWORD, role: g.role }),
  "post /v1/users/{user_id}/roles": (g) => ({ role: g.role }),
  "post /v1/roles": (g) => ({ name: `role-${g.n}`, permissions: [g.permission] }),
  "patch /v1/roles/{role_name}": (g) => ({ permissions: [g.permission] }),
  "post /v1/api-keys": (g) => ({ name: `key-${g.n}`, role: g.role }),
  "post /v1/credentials": (g) => ({ name: `cred-${g.n}`, permissions: [g.permission] }),
  "patch /v1/credentials/{credential_id}": (g) => ({ permissions: [g.permission] }),
  "post /v1/invites": (g) => ({ email: `i${g.n}@grants.test`, role: g.role }),
  "post /v1/oauth/clients": (g) => ({
    name: `client-${g.n}`,
    type: "public",
    redirect_uris: ["https://client.example/cb"],
    scopes: ["openid", g.permission],
  }),
  "patch /v1/oauth/clients/{client_id}": (g) => ({ scopes: ["openid", g.permission] }),
};

/** Mutations with such an argument that hand nothing out, and why. */
const notGrantMutations: Record<string, string> = { removeRole: "takes a role away" };

/** The GraphQL mutations, by field name. */
const mutations: Record<string, (grant: Grant, ids: Record<string, string>) => string> = {
  createUser: (g) =>
    `createUser(input: {email: "g${g.n}@grants.test", password: "${PASSWORD}", roles: ["${g.role}"]}) { id }`,
  assignRole: (g, ids) => `assignRole(userId: "${ids.user_id}", role: "${g.role}") { id }`,
  createRole: (g) =>
    `createRole(input: {name: "gql-${g.n}", permissions: ["${g.permission}"]}) { id }`,
  updateRole: (g, ids) =>
    `updateRole(name: "${ids.role_name}", input: {permissions: ["${g.permission}"]}) { id }`,
  createApiKey: (g) => `createApiKey(input: {name: "gql-${g.n}", role: "${g.role}"}) { key }`,
};

const held = (n: number): Grant => ({ permission: HELD, role: "within", n });
const notHeld = (n: number): Grant => ({ permission: NOT_HELD, role: "beyond", n });

interface Operation {
  method: string;
  path: string;
  key: string;
  fields: string[];
}

describe.each(backends)("handing out permissions on $name", (backend) => {
  let dispose: () => Promise<void>;
  let db: DatabasePort;
  let app: App;
  let services: Services;
  let tenant: Tenant;
  let granted: Operation[];
  let schema: GraphQLSchema;
  let ids: Record<string, string>;
  let callers: Array<{ kind: string; headers: Record<string, string> }>;
  let n = 0;

  async function created(path: string, body: unknown, headers = adminHeaders) {
    const res = await send(app, "POST", path, { body, headers });
    expect(res.status, `${path}: ${await res.clone().text()}`).toBe(201);
    return (await readJson(res)).data;
  }

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    ({ app, services } = createTestApp({ db }));
    tenant = await createTenant(app, "grants");
    const scoped = "/v1/apps/grants";
    await created(`${scoped}/roles`, {
      name: "granter",
      permissions: [
        "users:write",
        "users:delete",
        "roles:write",
        "api-keys:write",
        "credentials:write",
        "invites:write",
        "oauth-clients:write",
        HELD,
      ],
    });
    await created(`${scoped}/roles`, { name: "within", permissions: [HELD] });
    await created(`${scoped}/roles`, { name: "beyond", permissions: [NOT_HELD] });
    await created(`${scoped}/roles`, { name: "editable", permissions: [HELD] });
    const granter = await created(`${scoped}/users`, {
      email: "granter@grants.test",
      password: PASSWORD,
      role: "granter",
    });
    const plain = await created(`${scoped}/users`, {
      email: "plain@grants.test",
      password: PASSWORD,
      role: "within",
    });
    const key = await created(`${scoped}/api-keys`, { name: "granter", role: "granter" });
    const credential = await created(`${scoped}/credentials`, {
      name: "target",
      permissions: [HELD],
    });
    const client = await created(`${scoped}/oauth/clients`, {
      name: "target",
      type: "public",
      redirect_uris: ["https://client.example/cb"],
      scopes: ["openid"],
    });
    ids = {
      app_name: "grants",
      user_id: tenant.reader.id,
      role_name: "editable",
      credential_id: credential.id,
      client_id: client.id,
      granter_id: granter.id,
      plain_id: plain.id,
    };
    callers = [
      {
        kind: "a user with the write permissions and gps:read",
        headers: bearer((await signIn(app, "grants", "granter@grants.test")).accessToken),
      },
      { kind: "an API key of the same role", headers: { "X-API-Key": key.key } },
    ];

    const doc = await readJson(await send(app, "GET", "/v1/openapi.json"));
    const schemaOf = (s: JsonSchema | undefined) =>
      s?.$ref ? (doc.components.schemas[s.$ref.split("/").pop() ?? ""] as JsonSchema) : s;
    granted = Object.entries(
      doc.paths as Record<
        string,
        Record<
          string,
          { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } } | undefined
        >
      >,
    ).flatMap(([path, item]) =>
      methods.flatMap((method) => {
        const body = schemaOf(item[method]?.requestBody?.content?.["application/json"]?.schema);
        const fields = Object.keys(body?.properties ?? {}).filter((f) => GRANT_FIELDS.test(f));
        if (fields.length === 0) return [];
        const key = `${method} ${path.replace("/v1/apps/{app_name}/", "/v1/")}`;
        return notGrants[key] ? [] : [{ method, path, key, fields }];
      }),
    );
    schema = buildSchema(await (await send(app, "GET", "/v1/schema")).text());
  });
  afterAll(() => dispose());

  const fill = (path: string) =>
    path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(ids[name] ?? ""));

  const topLevel = () => granted.filter((op) => !op.path.startsWith("/v1/apps/"));
  const adminMount = () => granted.filter((op) => op.path.startsWith("/v1/apps/{app_name}/"));

  it("has a body for every grant-handing operation of the document", () => {
    expect(granted.filter((op) => !(op.key in bodies)).map((op) => op.key)).toEqual([]);
    const stale = Object.keys(bodies).filter((key) => !granted.some((op) => op.key === key));
    expect(stale, "bodies for operations that are gone").toEqual([]);
    // Service credentials and invites are the platform admin's only; the rest is on both mounts.
    expect(topLevel().length).toBeGreaterThanOrEqual(7);
    expect(
      adminMount()
        .map((op) => op.key)
        .sort(),
    ).toEqual(Object.keys(bodies).sort());
  });

  it("refuses every grant beyond the caller's own permissions with 403 and writes nothing", async () => {
    const watch = await writeWatch(db);
    const failures: string[] = [];
    let cases = 0;
    for (const caller of callers) {
      for (const op of topLevel()) {
        const body = bodies[op.key]?.(notHeld(++n));
        const before = await watch.snapshot();
        const res = await send(app, op.method.toUpperCase(), fill(op.path), {
          body,
          headers: caller.headers,
        });
        const text = await res.text();
        cases++;
        const label = `${caller.kind}: ${op.method.toUpperCase()} ${op.path} ${JSON.stringify(body)} → ${res.status} ${text.slice(0, 300)}`;
        if (res.status !== 403 || JSON.parse(text).error?.code !== "forbidden")
          failures.push(label);
        const { written } = await watch.after(before);
        if (written.length > 0) failures.push(`${label} wrote ${written.join(", ")}`);
      }
    }
    console.info(`[grants:${backend.name}] ${cases} grants beyond the caller's permissions`);
    expect(failures).toEqual([]);
  });

  it("lets the caller hand out exactly what it holds, and the platform admin anything", async () => {
    for (const caller of callers) {
      for (const op of topLevel()) {
        const body = bodies[op.key]?.(held(++n));
        const res = await send(app, op.method.toUpperCase(), fill(op.path), {
          body,
          headers: caller.headers,
        });
        expect(res.status, `${caller.kind}: ${op.key}: ${await res.clone().text()}`).toBeLessThan(
          300,
        );
      }
    }
    for (const op of adminMount()) {
      const body = bodies[op.key]?.(notHeld(++n));
      const res = await send(app, op.method.toUpperCase(), fill(op.path), {
        body,
        headers: adminHeaders,
      });
      expect(res.status, `platform admin: ${op.key}: ${await res.clone().text()}`).toBeLessThan(
        300,
      );
    }
  });

  it("stops the escalations: a *:* API key, the admin role for oneself, widening one's own role", async () => {
    const [user] = callers;
    const attempts: Array<[string, string, unknown]> = [
      ["POST", "/v1/api-keys", { name: "escalate", role: "api-full-access" }],
      ["POST", `/v1/users/${ids.granter_id}/roles`, { role: "admin" }],
      ["PATCH", "/v1/roles/granter", { permissions: ["*:*"] }],
      [
        "POST",
        "/v1/oauth/clients",
        {
          name: "escalate",
          type: "public",
          redirect_uris: ["https://e.example/cb"],
          scopes: ["*:*"],
        },
      ],
      ["POST", "/v1/roles", { name: "escalate", permissions: ["gps:*"] }],
    ];
    for (const [method, path, body] of attempts) {
      const res = await send(app, method, path, { body, headers: user?.headers });
      const answer = await readJson(res);
      expect(res.status, `${method} ${path}: ${JSON.stringify(answer)}`).toBe(403);
      expect(answer.error.details?.[0]?.reason).toMatch(/is not among your permissions$/);
    }
    const role = await readJson(
      await send(app, "GET", "/v1/apps/grants/roles/granter", { headers: adminHeaders }),
    );
    expect(role.data.permissions).not.toContain("*:*");
  });

  /** Whether an input (or a field of an input object, one level deep) hands out a grant. */
  const handsOut = (name: string, type: GraphQLInputType) => {
    if (GRANT_FIELDS.test(name)) return true;
    const named = getNamedType(type);
    return (
      isInputObjectType(named) && Object.keys(named.getFields()).some((f) => GRANT_FIELDS.test(f))
    );
  };

  it("refuses the same grants through GraphQL mutations, and allows what the caller holds", async () => {
    const fields = Object.values(schema.getMutationType()?.getFields() ?? {}).filter(
      (field) =>
        field.args.some((arg) => handsOut(arg.name, arg.type)) &&
        !(field.name in notGrantMutations),
    );
    expect(fields.map((f) => f.name).sort()).toEqual(Object.keys(mutations).sort());
    const watch = await writeWatch(db);
    for (const caller of callers) {
      for (const field of fields) {
        const write = mutations[field.name];
        if (!write) continue;
        const before = await watch.snapshot();
        const refused = await readJson(
          await send(app, "POST", "/v1/gql", {
            body: { query: `mutation { ${write(notHeld(++n), ids)} }` },
            headers: caller.headers,
          }),
        );
        expect(refused.errors?.[0]?.extensions?.code, `${caller.kind}: ${field.name}`).toBe(
          "FORBIDDEN",
        );
        expect((await watch.after(before)).written, field.name).toEqual([]);
        const allowed = await readJson(
          await send(app, "POST", "/v1/gql", {
            body: { query: `mutation { ${write(held(++n), ids)} }` },
            headers: caller.headers,
          }),
        );
        expect(allowed.errors, `${caller.kind}: ${field.name}`).toBeUndefined();
      }
    }
  });

  it("applies the rule in the services the platform admin's routes alone reach (credentials, invites)", async () => {
    const session = db.session();
    try {
      const ctx = (permissions: string[]): ServiceContext => ({
        ...services,
        db: session.db,
        clock: { now: () => new Date() },
        audit: {
          actorType: "user",
          actorId: ids.granter_id ?? null,
          ipAddress: null,
          userAgent: null,
        },
        grantor: { kind: "app", permissions },
      });
      const appRecord = await findAppByName(ctx([]), "grants");
      const holder = ["credentials:write", "invites:write", HELD];
      const refusals = [
        () => createCredential(ctx(holder), appRecord, { name: "svc", permissions: [NOT_HELD] }),
        () =>
          updateCredential(ctx(holder), appRecord, ids.credential_id ?? "", {
            permissions: ["*:*"],
          }),
        () =>
          createInvite(ctx(holder), appRecord, {
            email: "x@grants.test",
            role: "beyond",
            expires_in_hours: 1,
            max_uses: 1,
          }),
      ];
      const watch = await writeWatch(db);
      for (const refused of refusals) {
        const before = await watch.snapshot();
        await expect(refused()).rejects.toMatchObject({ status: 403, code: "forbidden" });
        expect((await watch.after(before)).written).toEqual([]);
      }
      await expect(
        createCredential(ctx(holder), appRecord, { name: "svc", permissions: [HELD] }),
      ).resolves.toMatchObject({ permissions: [HELD] });
      await expect(
        createInvite(ctx(holder), appRecord, {
          email: "y@grants.test",
          role: "within",
          expires_in_hours: 1,
          max_uses: 1,
        }),
      ).resolves.toMatchObject({ role: "within" });
    } finally {
      await session.release();
    }
  });

  it("refuses changing an account that holds more than the caller (password, email, deactivation), over REST and GraphQL", async () => {
    const account = "/v1/users/{user_id}";
    const doc = await readJson(await send(app, "GET", "/v1/openapi.json"));
    const changes = methods.filter((m) => m !== "get" && doc.paths[account]?.[m]);
    expect(changes).toEqual(["patch", "delete"]);
    const watch = await writeWatch(db);
    for (const caller of callers) {
      for (const method of changes) {
        const body = method === "patch" ? { password: "a new horse battery staple" } : undefined;
        const before = await watch.snapshot();
        const res = await send(app, method.toUpperCase(), `/v1/users/${tenant.admin.id}`, {
          body,
          headers: caller.headers,
        });
        expect(res.status, `${caller.kind}: ${method} ${await res.clone().text()}`).toBe(403);
        expect((await watch.after(before)).written).toEqual([]);
      }
      const gql = await readJson(
        await send(app, "POST", "/v1/gql", {
          body: {
            query: `mutation { updateUser(id: "${tenant.admin.id}", input: {email: "mine@grants.test"}) { id } }`,
          },
          headers: caller.headers,
        }),
      );
      expect(gql.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
      const within = await send(app, "PATCH", `/v1/users/${ids.plain_id}`, {
        body: { display_name: caller.kind },
        headers: caller.headers,
      });
      expect(within.status, await within.clone().text()).toBe(200);
    }
    // The admin still signs in with the old password.
    await signIn(app, "grants", tenant.admin.email);
  });
});
