import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createNodeOutboundNetwork } from "../src/adapters/node/outbound-network";
import type { DatabasePort, OutboundNetwork } from "../src/ports";
import { createOutboundPolicy, OutboundError } from "../src/services/outbound";
import {
  adminHeaders,
  createMemoryDatabase,
  createTestApp,
  createTestClock,
  type LogEvent,
} from "./support/app";
import { expectError, readJson } from "./support/http";
import { bearer, createTenant, send, type Tenant } from "./support/identity";

/**
 * A network that sends nothing anywhere: names resolve from a table the test edits, and every
 * request that would go out is recorded and answered by `answer`. Refusals are proven by the
 * record staying empty: the policy refuses before connecting.
 */
function stubNetwork(names: Record<string, string[]>) {
  const sent: string[] = [];
  const resolved: string[] = [];
  let answer = (_request: Request): Response => Response.json({ ok: true });
  const network: OutboundNetwork = {
    async resolveHost(hostname) {
      resolved.push(hostname);
      const addresses = names[hostname];
      if (!addresses)
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), {
          code: "ENOTFOUND",
        });
      return addresses;
    },
    async send(request, admit) {
      // What the Node adapter does in the connection's own lookup.
      const literal = new URL(request.url).hostname.replace(/^\[|\]$/g, "");
      const addresses = names[new URL(request.url).hostname] ?? [literal];
      if (!addresses.some(admit)) throw new Error("no admitted address");
      sent.push(`${request.method} ${request.url}`);
      return answer(request);
    },
  };
  return {
    network,
    sent,
    resolved,
    names,
    answer: (next: (request: Request) => Response) => {
      answer = next;
    },
  };
}

/** Test host names and the address each stands for: none of them is ever contacted. */
const TARGETS = {
  "private.test": ["10.0.0.1"],
  "private-b.test": ["172.16.5.4"],
  "private-c.test": ["192.168.1.1"],
  "loopback.test": ["127.0.0.1"],
  "linklocal.test": ["169.254.10.10"],
  "metadata.test": ["169.254.169.254"],
  "cgnat.test": ["100.64.0.1"],
  "ula.test": ["fd00::1"],
  "aws-metadata-v6.test": ["fd00:ec2::254"],
  "ipv6-loopback.test": ["::1"],
  "mapped.test": ["::ffff:127.0.0.1"],
  "unspecified.test": ["0.0.0.0"],
  "mixed.test": ["93.184.216.34", "10.0.0.1"],
};
const PUBLIC = { "idp.public.test": ["93.184.216.34"], "other.public.test": ["93.184.216.35"] };
const REFUSED_LITERALS = [
  "https://10.0.0.1/x",
  "https://127.0.0.1/x",
  "https://169.254.169.254/latest/meta-data/",
  "https://100.100.100.200/x",
  "https://[::1]/x",
  "https://[fd00::1]/x",
  "https://[fe80::1]/x",
  "https://[::ffff:169.254.169.254]/x",
  // The WHATWG parser normalizes these to 127.0.0.1 before the policy sees them.
  "https://2130706433/x",
  "https://0x7f.1/x",
];

const policyWith = (allowlist: string[] = []) => {
  const stub = stubNetwork({ ...TARGETS, ...PUBLIC });
  const clock = createTestClock();
  return { stub, clock, policy: createOutboundPolicy({ allowlist, network: stub.network, clock }) };
};

describe("the outbound-fetch policy", () => {
  it("refuses private, loopback, link-local, metadata, CGNAT and ULA targets without connecting", async () => {
    const { policy, stub } = policyWith();
    const urls = [...Object.keys(TARGETS).map((host) => `https://${host}/x`), ...REFUSED_LITERALS];
    for (const url of urls) {
      await expect(policy.fetch(url), url).rejects.toThrow(OutboundError);
      await expect(policy.assertAllowed({ issuer: url }), url).rejects.toMatchObject({
        code: "validation_error",
        options: { details: [{ field: "json.issuer" }] },
      });
    }
    expect(stub.sent).toEqual([]);
  });

  it("takes https to public addresses; http, in any case, only for allow-listed hosts", async () => {
    const { policy, stub } = policyWith();
    expect((await policy.fetch("HTTPS://IDP.PUBLIC.TEST/.well-known/x")).status).toBe(200);
    for (const url of [
      "http://idp.public.test/x",
      "HTTP://idp.public.test/x",
      "hTtP://93.184.216.34/",
    ]) {
      await expect(policy.fetch(url), url).rejects.toThrow(OutboundError);
      await expect(policy.assertAllowed({ jwks_uri: url })).rejects.toMatchObject({
        options: { details: [{ field: "json.jwks_uri", reason: "must be https" }] },
      });
    }
    for (const url of [
      "ftp://idp.public.test/",
      "file:///etc/passwd",
      "gopher://idp.public.test/",
    ]) {
      await expect(policy.fetch(url), url).rejects.toThrow(OutboundError);
    }
    await expect(policy.fetch("https://user:pw@idp.public.test/")).rejects.toThrow(OutboundError);
    expect(stub.sent).toEqual(["GET https://idp.public.test/.well-known/x"]);
  });

  it("reaches a refused address only through OUTBOUND_ALLOWLIST: IPs, CIDRs, hosts, host:port", async () => {
    const { policy, stub } = policyWith([
      "127.0.0.1",
      "10.0.0.0/8",
      "metadata.test:8443",
      "[fd00::1]:9000",
    ]);
    for (const url of [
      "http://127.0.0.1:4000/x",
      "https://private.test/x",
      "http://10.1.2.3/x",
      "https://metadata.test:8443/x",
      "http://[fd00::1]:9000/x",
    ]) {
      expect((await policy.fetch(url)).status, url).toBe(200);
      await expect(policy.assertAllowed({ issuer: url })).resolves.toBeUndefined();
    }
    for (const url of [
      "https://metadata.test/x",
      "https://[fd00::1]:9001/x",
      "https://192.168.1.1/x",
      "https://ula.test/x",
    ]) {
      await expect(policy.fetch(url), url).rejects.toThrow(OutboundError);
    }
    expect(stub.sent).toHaveLength(5);
    // An allow-listed address is reachable under any name that resolves to it.
    expect((await policy.fetch("https://loopback.test/x")).status).toBe(200);
  });

  it("checks every redirect hop, and follows none to a refused host", async () => {
    const { policy, stub } = policyWith();
    stub.answer((request) =>
      request.url.includes("idp.public.test")
        ? new Response(null, { status: 302, headers: { location: "https://metadata.test/latest" } })
        : Response.json({}),
    );
    await expect(policy.fetch("https://idp.public.test/start")).rejects.toThrow(OutboundError);
    expect(stub.sent).toEqual(["GET https://idp.public.test/start"]);

    stub.answer((request) =>
      request.url.startsWith("https://idp.public.test/")
        ? new Response(null, { status: 307, headers: { location: "https://other.public.test/ok" } })
        : Response.json({ authorization: request.headers.get("authorization") }),
    );
    const followed = await policy.fetch("https://idp.public.test/moved", {
      headers: { authorization: "Bearer secret" },
    });
    // Credentials do not follow a redirect to another origin.
    expect(await followed.json()).toEqual({ authorization: null });
  });

  it("re-checks at fetch time: a name that resolves elsewhere since it was saved is refused", async () => {
    const { policy, stub } = policyWith();
    stub.names["rebind.test"] = ["93.184.216.34"];
    await expect(policy.assertAllowed({ issuer: "https://rebind.test" })).resolves.toBeUndefined();
    stub.names["rebind.test"] = ["169.254.169.254"];
    await expect(
      policy.fetch("https://rebind.test/.well-known/openid-configuration"),
    ).rejects.toThrow(OutboundError);
    expect(stub.sent).toEqual([]);
  });

  it("answers every failure the same, remembers it for 30 s, and then tries again", async () => {
    const { policy, stub, clock } = policyWith();
    stub.names["flaky.test"] = ["93.184.216.34"];
    stub.answer(() => {
      throw Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    });
    const failures = await Promise.all(
      ["https://flaky.test/x", "https://private.test/x", "https://nowhere.test/x"].map((url) =>
        policy.fetch(url).catch((error: unknown) => error),
      ),
    );
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(OutboundError);
      expect((failure as Error).message).toBe("The URL could not be fetched");
    }
    // Only the public host was tried; the private and unresolvable ones never left.
    expect(stub.sent).toEqual(["GET https://flaky.test/x"]);
    const resolvedBefore = stub.resolved.length;
    await expect(policy.fetch("https://flaky.test/x")).rejects.toThrow(OutboundError);
    expect(stub.resolved.length).toBe(resolvedBefore);
    stub.answer(() => Response.json({ ok: true }));
    clock.advance(31_000);
    expect((await policy.fetch("https://flaky.test/x")).status).toBe(200);
  });

  it("on Node, connects only to the address it checked (no DNS rebinding), following no redirect", async () => {
    let connections = 0;
    const server: Server = createHttpServer((_req, res) => {
      res.writeHead(302, { location: "http://127.0.0.1:1/next" }).end();
    });
    server.on("connection", () => connections++);
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    const { port } = server.address() as { port: number };
    try {
      const network = createNodeOutboundNetwork();
      // `localhost` resolves to loopback in the connection's own lookup: refused there.
      await expect(
        network.send(new Request(`http://localhost:${port}/`), () => false),
      ).rejects.toThrow();
      expect(connections).toBe(0);
      const admitted = await network.send(new Request(`http://localhost:${port}/`), (address) =>
        ["127.0.0.1", "::1"].includes(address),
      );
      expect(admitted.status).toBe(302);
      expect(connections).toBe(1);
    } finally {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    }
  });
});

describe("tenant-chosen URLs over the API", () => {
  let db: DatabasePort;
  let tenant: Tenant;
  const stub = stubNetwork({ ...TARGETS, ...PUBLIC });
  const clock = createTestClock();
  let app: ReturnType<typeof createTestApp>["app"];
  let logs: LogEvent[];

  beforeAll(async () => {
    db = await createMemoryDatabase();
    const created = createTestApp({
      db,
      clock,
      ports: { outboundNetwork: stub.network },
    });
    app = created.app;
    logs = created.logs;
    tenant = await createTenant(app, "egress");
  });
  afterAll(async () => {
    await db?.close();
  });

  /** Body fields of the served document that hold a URL: by format or by name. */
  const URL_NAME = /(^|_)(url|uri|uris|issuer|endpoint)$/;
  type Schema = {
    $ref?: string;
    format?: string;
    type?: string;
    properties?: Record<string, Schema>;
    items?: Schema;
    allOf?: Schema[];
  };

  /**
   * What each URL field is: one Heimdall fetches (the outbound policy must refuse it at save) or
   * a redirect target (the redirect URI rule must refuse it). A URL field of any other operation
   * fails the walk until it is classified here.
   */
  const classified: Record<
    string,
    { fetched?: string[]; redirect?: string[]; compared?: string[] }
  > = {
    "post /platforms": {
      fetched: [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
      ],
    },
    "patch /platforms/{platform_id}": {
      fetched: [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
      ],
    },
    "post /oauth/clients": { redirect: ["redirect_uris"] },
    "patch /oauth/clients/{client_id}": { redirect: ["redirect_uris"] },
    // Compared with the code's stored redirect URI, never fetched, stored or redirected to.
    "post /tokens": { compared: ["redirect_uri"] },
    // Matched against a request's Origin header to answer CORS, never fetched; the hosted
    // account pages link the user back to the return URL (a redirect target, never fetched).
    "patch /settings": { compared: ["cors_origins"], redirect: ["account_return_url"] },
  };

  it("checks every URL field of every request body at save (walked from /v1/openapi.json)", async () => {
    const doc = await readJson(await app.request("/v1/openapi.json"));
    const deref = (schema: Schema): Schema =>
      schema.$ref ? deref(doc.components.schemas[schema.$ref.split("/").pop() ?? ""]) : schema;
    const listFields = new Set<string>();
    const urlFields = (schema: Schema): string[] =>
      Object.entries(deref(schema).properties ?? {}).flatMap(([name, raw]) => {
        const field = deref(raw);
        const item = field.items ? deref(field.items) : undefined;
        if (item) listFields.add(name);
        return URL_NAME.test(name) || field.format === "uri" || item?.format === "uri"
          ? [name]
          : [];
      });

    const platform = await readJson(
      await send(app, "POST", "/v1/apps/egress/platforms", {
        headers: adminHeaders,
        body: {
          name: "base",
          display_name: "Base",
          issuer: "https://idp.public.test",
          client_id: "x",
        },
      }),
    );
    const client = await readJson(
      await send(app, "POST", "/v1/apps/egress/oauth/clients", {
        headers: adminHeaders,
        body: {
          name: "c",
          type: "public",
          redirect_uris: ["https://a.example/cb"],
          scopes: ["openid"],
        },
      }),
    );
    let serial = 0;
    const validBody = (key: string): Record<string, unknown> =>
      key.startsWith("post /platforms")
        ? {
            name: `p${++serial}`,
            display_name: "P",
            issuer: "https://idp.public.test",
            client_id: "x",
          }
        : key.startsWith("post /oauth/clients")
          ? {
              name: "c",
              type: "public",
              redirect_uris: ["https://a.example/cb"],
              scopes: ["openid"],
            }
          : {};
    const fill = (path: string) =>
      path
        .replace("{app_name}", "egress")
        .replace("{platform_id}", platform.data.id)
        .replace("{client_id}", client.data.client_id);

    const walked: string[] = [];
    type Operation = { requestBody?: { content?: Record<string, { schema?: Schema }> } };
    const paths: Record<string, Record<string, Operation>> = doc.paths;
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        // Every media type of the body (JSON, and the form the token endpoint takes too).
        const schema = Object.values(operation.requestBody?.content ?? {}).find(
          (media) => media.schema,
        )?.schema;
        if (!schema) continue;
        const fields = urlFields(schema);
        if (fields.length === 0) continue;
        const key = `${method} ${path.replace(/^\/v1(\/apps\/\{app_name\})?/, "")}`;
        const rule = classified[key];
        expect(rule, `${method} ${path} has URL fields ${fields} no rule covers`).toBeDefined();
        expect(
          [...(rule?.fetched ?? []), ...(rule?.redirect ?? []), ...(rule?.compared ?? [])].sort(),
          key,
        ).toEqual([...fields].sort());
        const headers = path.startsWith("/v1/apps/")
          ? adminHeaders
          : bearer(tenant.admin.accessToken);
        const attempts = [
          ...(rule?.fetched ?? []).flatMap((field) =>
            [
              "https://metadata.test/latest/meta-data/",
              "https://10.0.0.1/",
              "HTTP://idp.public.test/",
            ].map((url) => ({ field, value: url as unknown })),
          ),
          ...(rule?.redirect ?? []).flatMap((field) =>
            ["javascript:alert(1)", "http://a.example/cb", "data:text/html,x"].map((url) => ({
              field,
              value: (listFields.has(field) ? [url] : url) as unknown,
            })),
          ),
        ];
        for (const { field, value } of attempts) {
          const res = await send(app, method.toUpperCase() as "POST", fill(path), {
            headers,
            body: { ...validBody(key), [field]: value },
          });
          const body = await expectError(res, 400, "validation_error");
          expect(body.error.details?.[0]?.field, `${key} ${field}=${value}`).toMatch(
            new RegExp(`^json\\.${field}`),
          );
        }
        walked.push(key);
      }
    }
    expect(new Set(walked)).toEqual(new Set(Object.keys(classified)));
    expect(stub.sent).toEqual([]);
  });

  it("answers an anonymous sign-in the same 503 whatever stops the fetch, and logs no error", async () => {
    stub.names["probe.test"] = ["93.184.216.34"];
    const create = (name: string) =>
      send(app, "POST", "/v1/apps/egress/platforms", {
        headers: adminHeaders,
        body: { name, display_name: name, issuer: "https://probe.test", client_id: "x" },
      });
    expect((await create("probe")).status).toBe(201);
    // Rebound after the save: the fetch-time check refuses it.
    stub.names["probe.test"] = ["169.254.169.254"];
    const first = await app.request("/v1/apps/egress/platforms/probe/login");
    stub.names["probe.test"] = ["93.184.216.34"];
    stub.names["down.test"] = ["93.184.216.36"];
    stub.answer(() => {
      throw Object.assign(new Error("connect ECONNREFUSED 93.184.216.36:443"), {
        code: "ECONNREFUSED",
      });
    });
    expect(
      (
        await send(app, "POST", "/v1/apps/egress/platforms", {
          headers: adminHeaders,
          body: { name: "down", display_name: "d", issuer: "https://down.test", client_id: "x" },
        })
      ).status,
    ).toBe(201);
    const second = await app.request("/v1/apps/egress/platforms/down/login");
    stub.answer(() => new Response("not json", { status: 200 }));
    stub.names["garbage.test"] = ["93.184.216.37"];
    await send(app, "POST", "/v1/apps/egress/platforms", {
      headers: adminHeaders,
      body: { name: "garbage", display_name: "g", issuer: "https://garbage.test", client_id: "x" },
    });
    const third = await app.request("/v1/apps/egress/platforms/garbage/login");
    const shapes = [];
    for (const res of [first, second, third]) {
      const body = await expectError(res, 503, "service_unavailable");
      shapes.push({ status: res.status, message: body.error.message, details: body.error.details });
    }
    expect(shapes[1]).toEqual(shapes[0]);
    expect(shapes[2]).toEqual(shapes[0]);
    expect(stub.sent.filter((line) => line.includes("probe.test"))).toEqual([]);
    expect(logs.filter((event) => event.level === "error")).toEqual([]);
    expect(logs.filter((event) => event.message.startsWith("platform provider"))).toHaveLength(3);
  });
});

describe("outbound requests in the source", () => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
    });
  const source = [...files("src"), ...files("party"), ...files("functions")].map((path) => ({
    path,
    text: readFileSync(path, "utf8"),
  }));

  it("sends to tenant-chosen URLs only through the policy: no other fetch, http(s) client or openid-client use", () => {
    const networkAdapters = [
      "src/adapters/node/outbound-network.ts",
      "src/adapters/cloudflare/outbound-network.ts",
    ];
    // Operator-configured services (Upstash, Neon, Sentry) use their own clients, not fetch here;
    // these adapters fetch only the URL the operator configured (EMAIL_API_URL or the provider's,
    // BREACHED_PASSWORDS_API_URL), never one a tenant chose.
    const operatorServices = [
      "src/adapters/email/http-provider.ts",
      "src/adapters/pwned-passwords.ts",
    ];
    for (const path of operatorServices) {
      expect(
        source.some((file) => file.path === path),
        path,
      ).toBe(true);
    }
    const direct = source.filter(
      ({ path, text }) =>
        !networkAdapters.includes(path) &&
        !operatorServices.includes(path) &&
        /(?:await|return|=>|=|\(|,)\s*fetch\(|globalThis\.fetch|from "node:https?"(?!.*type)|import\("node:https?"\)/.test(
          text.replace(/^import type .*$/gm, ""),
        ),
    );
    expect(direct.map(({ path }) => path)).toEqual([]);
    // Every openid-client configuration, discovered or built by hand, fetches through the policy;
    // the calls that take one (code grant, userinfo) get it from where it is built.
    const builders = source.filter(
      ({ text }) =>
        text.includes('from "openid-client"') && /\bdiscovery\(|new Configuration\(/.test(text),
    );
    expect(builders.length).toBeGreaterThan(0);
    for (const { path, text } of builders) {
      expect(text, path).toContain("[customFetch]: providerFetch(ctx.outbound)");
      expect(text, path).toContain("config[customFetch] = providerFetch(ctx.outbound)");
    }
  });
});

describe("OUTBOUND_ALLOWLIST", () => {
  it("is empty by default, also in development, and refuses an entry it cannot read", async () => {
    const { parseConfig } = await import("../src/config");
    expect(parseConfig({ APP_ENV: "development" }).OUTBOUND_ALLOWLIST).toEqual([]);
    expect(
      parseConfig({ OUTBOUND_ALLOWLIST: "127.0.0.1, 10.0.0.0/8,idp.lan:8443,[::1]:9000" })
        .OUTBOUND_ALLOWLIST,
    ).toEqual(["127.0.0.1", "10.0.0.0/8", "idp.lan:8443", "[::1]:9000"]);
    expect(() => parseConfig({ OUTBOUND_ALLOWLIST: "10.0.0.0/99" })).toThrow(/OUTBOUND_ALLOWLIST/);
    expect(() => parseConfig({ OUTBOUND_ALLOWLIST: "http://x" })).toThrow(/OUTBOUND_ALLOWLIST/);
  });
});

it("keeps a closed port's answer the same as an open one's over the real Node network", async () => {
  const sockets = new Set<import("node:net").Socket>();
  const tcp = createTcpServer((socket) => {
    sockets.add(socket);
    socket.end("not http\r\n\r\n");
  });
  await new Promise<void>((done) => tcp.listen(0, "127.0.0.1", done));
  const open = (tcp.address() as { port: number }).port;
  const policy = createOutboundPolicy({
    allowlist: ["127.0.0.1"],
    network: createNodeOutboundNetwork(),
    clock: createTestClock(),
  });
  try {
    const answers = await Promise.all(
      [`http://127.0.0.1:${open}/`, "http://127.0.0.1:1/"].map((url) =>
        policy.fetch(url).then(
          () => "fetched",
          (error: Error) => `${error.name}: ${error.message}`,
        ),
      ),
    );
    expect(answers).toEqual([
      "OutboundError: The URL could not be fetched",
      "OutboundError: The URL could not be fetched",
    ]);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((done) => tcp.close(done));
  }
});
