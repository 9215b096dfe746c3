import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import {
  type CryptoKey,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  SignJWT,
} from "jose";
import pg from "pg";
import { ulid } from "ulidx";
import { createApp } from "../../src/app";
import { type SigningAlgorithm, signingAlgorithms } from "../../src/db/schema/settings";
import { cookieJar } from "../../test/support/cookie-jar";
import { type OidcProvider, OidcProviderClass } from "../../test/support/oidc-provider";
import {
  type BenchDatabase,
  benchPorts,
  type Configuration,
  call,
  configurationLabel,
  fmt,
  type LoadResult,
  load,
  openBenchDatabase,
  rssMiB,
  runJson,
  type Scenario,
  serveFetch,
  table,
} from "../harness";
import type { ChainInput, ChainResult } from "../load-chains";
import { figure, meet, type TargetId } from "../targets";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_SECONDS = 1;
/** autocannon connections, and refresh chains: the same concurrency everywhere. */
const CONNECTIONS = 16;
const PERMISSIONS = ["projects:read", "projects:write"];
const TTL = 3600;
const PASSWORD = "bench-password-0123456789";
const REDIRECT_URI = "https://client.bench.test/callback";
const OP_SECRET = "oidc-provider-bench-client-secret-0123456789";

const slug = (alg: SigningAlgorithm) => alg.toLowerCase();
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
const keyOptions = (alg: SigningAlgorithm) => ({
  extractable: true,
  ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}),
});
const FORM = "application/x-www-form-urlencoded";
const CLIENT_CREDENTIALS = "grant_type=client_credentials";

/** The resource server (RFC 8707) each oidc-provider client's tokens are for, and its alg. */
const resourceOf = (clientId: string) => `urn:bench:${clientId}`;
const CHAIN_CLIENT = "chains";

/**
 * oidc-provider on a loopback socket, configured like Heimdall: per-algorithm confidential
 * clients (client_secret_basic) for `client_credentials`, JWT access tokens for a resource
 * server signed with that algorithm and carrying the same extra claims; a code-flow client whose
 * refresh tokens rotate on every use. Its login and consent are this scenario's own route.
 */
async function startOidcProvider() {
  let provider: OidcProvider | undefined;
  let handle: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (!provider) return void res.writeHead(503).end();
    if (req.url?.startsWith("/interaction/")) {
      void interact(provider, req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
      return;
    }
    handle ??= provider.callback();
    handle(req, res);
  });
  async function interact(op: OidcProvider, req: IncomingMessage, res: ServerResponse) {
    const details = await op.interactionDetails(req, res);
    if (details.prompt.name === "login") {
      await op.interactionFinished(
        req,
        res,
        { login: { accountId: "bench-user" } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const accountId = details.session?.accountId ?? "bench-user";
    const grant = details.grantId
      ? await op.Grant.find(details.grantId)
      : new op.Grant({ accountId, clientId: details.params.client_id });
    if (!grant) throw new Error("grant not found");
    const { missingOIDCScope, missingResourceScopes } = details.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(" "));
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(" "));
    }
    await op.interactionFinished(
      req,
      res,
      { consent: { grantId: await grant.save() } },
      { mergeWithLastSubmission: true },
    );
  }
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const keys = [];
  for (const alg of signingAlgorithms) {
    const { privateKey } = await generateKeyPair(alg, keyOptions(alg));
    keys.push({ ...(await exportJWK(privateKey)), kid: `op-${slug(alg)}`, alg, use: "sig" });
  }
  const algOf = new Map<string, SigningAlgorithm>([
    ...signingAlgorithms.map((alg) => [resourceOf(`cc-${slug(alg)}`), alg] as const),
    [resourceOf(CHAIN_CLIENT), "RS256"],
  ]);
  const appId = `app_${ulid()}`;
  provider = new OidcProviderClass(issuer, {
    clients: [
      ...signingAlgorithms.map((alg) => ({
        client_id: `cc-${slug(alg)}`,
        client_secret: OP_SECRET,
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
      })),
      {
        client_id: CHAIN_CLIENT,
        client_secret: OP_SECRET,
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: [REDIRECT_URI],
      },
    ],
    scopes: ["offline_access"],
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub }),
    }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // The client's own resource server when the request names none (Heimdall's tokens are
        // always for the client's app), so a client sends the same body to both.
        defaultResource: async (_ctx: unknown, client: { clientId: string }, oneOf?: string[]) =>
          oneOf ?? resourceOf(client.clientId),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, indicator: string) => {
          const alg = algOf.get(indicator);
          if (!alg) throw new Error(`unknown resource ${indicator}`);
          return {
            scope: PERMISSIONS.join(" "),
            audience: indicator.slice("urn:bench:".length),
            accessTokenTTL: TTL,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg } },
          };
        },
      },
    },
    // Heimdall's tokens carry the app, roles and permissions: the same claims, the same size.
    extraTokenClaims: async () => ({ app: appId, roles: [], permissions: PERMISSIONS }),
    rotateRefreshToken: true,
    pkce: { required: () => true },
    interactions: {
      url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    jwks: { keys },
    cookies: { keys: ["oidc-provider-bench-cookie-key"] },
    ttl: {
      AccessToken: TTL,
      ClientCredentials: TTL,
      AuthorizationCode: 60,
      RefreshToken: 30 * 86_400,
      Grant: 30 * 86_400,
      Interaction: 600,
      Session: 600,
    },
  });
  return {
    url: issuer,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

/**
 * A refresh token from oidc-provider the way a client gets one: the authorization code flow
 * with PKCE, `offline_access` and `prompt=consent`, a fresh browser (so a session and a grant of
 * its own) per token, then the code exchanged at the token endpoint.
 */
async function opRefreshToken(op: string): Promise<string> {
  const verifier = randomBytes(32).toString("base64url");
  let url = new URL(`${op}/auth`);
  url.search = new URLSearchParams({
    client_id: CHAIN_CLIENT,
    response_type: "code",
    redirect_uri: REDIRECT_URI,
    scope: `offline_access ${PERMISSIONS.join(" ")}`,
    resource: resourceOf(CHAIN_CLIENT),
    prompt: "consent",
    state: randomBytes(8).toString("hex"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  }).toString();
  const jar = cookieJar();
  let code: string | null = null;
  for (let hop = 0; hop < 12 && !code; hop++) {
    const res = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } });
    jar.store(res);
    const text = await res.text();
    const location = res.headers.get("location");
    if (!location) throw new Error(`oidc-provider ${res.status} at ${url.pathname}: ${text}`);
    const next = new URL(location, url);
    if (next.href.startsWith(REDIRECT_URI)) code = next.searchParams.get("code");
    url = next;
  }
  if (!code) throw new Error("oidc-provider never redirected back with a code");
  const res = await fetch(`${op}/token`, {
    method: "POST",
    headers: { Authorization: basic(CHAIN_CLIENT, OP_SECRET), "Content-Type": FORM },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: verifier,
    }),
  });
  const body = (await res.json()) as { refresh_token?: string };
  if (!res.ok || !body.refresh_token) {
    throw new Error(`oidc-provider code exchange: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.refresh_token;
}

/** The ceiling: a bare Hono app whose one route signs Heimdall's claims with raw `jose`. */
async function rawJoseApp(alg: SigningAlgorithm) {
  const { privateKey } = await generateKeyPair(alg, keyOptions(alg));
  const key = privateKey as CryptoKey;
  const kid = ulid();
  const name = `cc-${slug(alg)}`;
  // Fixed per client, as Heimdall's come from its rows; only `jti` is new per token.
  const subject = { sub: `cred_${ulid()}`, app: `app_${ulid()}` };
  const clientId = `svc_${randomBytes(12).toString("base64url")}`;
  const app = new Hono().post("/token", async (c) => {
    const form = await c.req.parseBody();
    if (form.grant_type !== "client_credentials") {
      return c.json({ error: "unsupported_grant_type" }, 400);
    }
    const iat = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({
      iss: `http://127.0.0.1/v1/apps/${name}`,
      sub: subject.sub,
      aud: name,
      app: subject.app,
      roles: [],
      permissions: PERMISSIONS,
      jti: ulid(),
      iat,
      exp: iat + TTL,
      client_id: clientId,
    })
      .setProtectedHeader({ alg, kid, typ: "at+jwt" })
      .sign(key);
    c.header("Cache-Control", "no-store");
    c.header("Pragma", "no-cache");
    return c.json({
      access_token: token,
      token_type: "Bearer",
      expires_in: TTL,
      scope: PERMISSIONS.join(" "),
    });
  });
  return serveFetch(app.fetch);
}

/** One `client_credentials` request as a client sends it; checks the answer is a JWT of `alg`. */
async function checkClientCredentials(url: string, authorization: string, alg: SigningAlgorithm) {
  const res = await fetch(url, {
    method: "POST",
    headers: { Authorization: authorization, "Content-Type": FORM },
    body: CLIENT_CREDENTIALS,
  });
  const body = (await res.json()) as { access_token?: string };
  if (!res.ok || !body.access_token)
    throw new Error(`${url}: ${res.status} ${JSON.stringify(body)}`);
  const header = decodeProtectedHeader(body.access_token);
  if (header.alg !== alg || header.typ !== "at+jwt") {
    throw new Error(`${url}: expected an ${alg} at+jwt, got ${JSON.stringify(header)}`);
  }
  const claims = Object.keys(decodeJwt(body.access_token)).sort();
  return { length: body.access_token.length, claims };
}

/** A warm-up second, then the measured run, with autocannon from its own process. */
async function measured(url: string, authorization: string) {
  const options = {
    url,
    method: "POST",
    headers: { Authorization: authorization, "Content-Type": FORM },
    body: CLIENT_CREDENTIALS,
    connections: CONNECTIONS,
  };
  await load({ ...options, seconds: WARMUP_SECONDS });
  return load({ ...options, seconds: SECONDS });
}

type ChainRequest = Omit<ChainInput, "tokens" | "seconds">;

/** bench/load-chains.ts in its own process (tsx), as autocannon is for fixed bodies. */
function loadChains(request: ChainInput): Promise<ChainResult> {
  const tsx = fileURLToPath(new URL("../../node_modules/tsx/dist/cli.mjs", import.meta.url));
  const script = fileURLToPath(new URL("../load-chains.ts", import.meta.url));
  return runJson<ChainResult>([tsx, script], JSON.stringify(request));
}

/** One request of a chain, as bench/load-chains.ts sends it. */
async function postChain(request: ChainRequest, token: string) {
  const fields = { ...request.fields, [request.tokenField]: token };
  const res = await fetch(request.url, {
    method: "POST",
    headers: {
      ...request.headers,
      "Content-Type": request.format === "json" ? "application/json" : FORM,
    },
    body: request.format === "json" ? JSON.stringify(fields) : new URLSearchParams(fields),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A refresh rotates: a new refresh token, an RS256 `at+jwt`, no ID token; the old one refused. */
async function checkRotation(request: ChainRequest, token: string) {
  const first = await postChain(request, token);
  const next = first.body.refresh_token;
  const access = first.body.access_token;
  if (first.status !== 200 || typeof next !== "string" || typeof access !== "string") {
    throw new Error(`${request.url}: ${first.status} ${JSON.stringify(first.body)}`);
  }
  const header = decodeProtectedHeader(access);
  if (next === token || header.alg !== "RS256" || header.typ !== "at+jwt" || first.body.id_token) {
    throw new Error(`${request.url}: not a rotation to an RS256 at+jwt: ${JSON.stringify(first)}`);
  }
  const again = await postChain(request, token);
  // oidc-provider answers RFC 6749's `{error}`, Heimdall its envelope `{error: {code}}`.
  const error = again.body.error as string | { code?: string } | undefined;
  const code = typeof error === "string" ? error : error?.code;
  if (again.status !== 400 || code !== "invalid_grant") {
    throw new Error(`${request.url}: a spent refresh token got ${again.status}`);
  }
}

/** Chains warmed up for a second, then measured from where the warm-up left their tokens. */
async function measuredChains(request: ChainRequest, tokens: string[]) {
  const warm = await loadChains({ ...request, tokens, seconds: WARMUP_SECONDS });
  if (warm.errors > 0) throw new Error(`${request.url} warm-up: ${warm.firstError}`);
  return loadChains({ ...request, tokens: warm.tokens, seconds: SECONDS });
}

const ms = (value: number) => `${fmt(value, 1)} ms`;
const failures = (result: LoadResult) =>
  result.non2xx + result.errors === 0
    ? "0"
    : `**${fmt(result.non2xx)} non-2xx, ${fmt(result.errors)} errors**`;
const loadRow = (label: string, result: LoadResult, tokenLength: number) => [
  label,
  fmt(result.requestsPerSecond),
  ms(result.p50),
  ms(result.p99),
  failures(result),
  fmt(tokenLength),
];

/** What the database is durable as: Postgres' own settings, or PGlite in memory. */
async function durabilityOf(db: BenchDatabase) {
  if (!db.url) return "in memory, not durable";
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    const setting = async (name: string) =>
      (await client.query<Record<string, string>>(`show ${name}`)).rows[0]?.[name] ?? "?";
    return `durable: \`fsync=${await setting("fsync")}\`, \`synchronous_commit=${await setting("synchronous_commit")}\``;
  } finally {
    await client.end();
  }
}

/** Token issuance with Heimdall on PGlite or on the Postgres of BENCH/TEST_DATABASE_URL. */
export const tokensScenario = (kind: "pglite" | "postgres"): Scenario => ({
  name: `tokens-${kind}`,
  async run() {
    const started = performance.now();
    const loadBefore = loadavg()[0] ?? 0;
    const db = await openBenchDatabase(kind);
    const where = kind === "postgres" ? "Postgres" : "PGlite";
    // The targets are on Postgres; PGlite's figures are shown, not judged.
    const judgedOnPostgres = (id: TargetId, value: number, label = "") =>
      kind === "postgres"
        ? meet(id, value, label)
        : `${figure(id, value)} (the target is on Postgres)`;
    const durability = await durabilityOf(db);
    const heimdall = await serveFetch(createApp(await benchPorts(db.port)).fetch);
    // The same database, logs and the rate limiter on: what a deployment answers.
    const production = await serveFetch(
      createApp(await benchPorts(db.port, { configuration: "production" })).fetch,
    );
    const op = await startOidcProvider();
    const raws: Array<{ close(): Promise<void> }> = [];
    try {
      // 1 and 2: client_credentials, one Heimdall app per algorithm.
      const rows: Array<Array<string | number>> = [];
      const ratios: Array<Array<string | number>> = [];
      /** Raw jose's RS256 rate: what a server doing nothing but sign could answer. */
      let rs256Ceiling = 0;
      const problems: string[] = [];
      let claimShapes = "";
      for (const alg of signingAlgorithms) {
        const name = `cc-${slug(alg)}`;
        await call(heimdall.url, "/v1/apps", { body: { name, display_name: name } });
        await call(heimdall.url, `/v1/apps/${name}/settings`, {
          method: "PATCH",
          body: { signing_algorithm: alg },
        });
        const { data: credential } = await call<{
          data: { client_id: string; client_secret: string };
        }>(heimdall.url, `/v1/apps/${name}/credentials`, {
          body: { name: "bench", permissions: PERMISSIONS },
        });
        const raw = await rawJoseApp(alg);
        raws.push(raw);

        const targets = {
          heimdall: {
            url: `${heimdall.url}/v1/apps/${name}/tokens`,
            auth: basic(credential.client_id, credential.client_secret),
          },
          raw: { url: `${raw.url}/token`, auth: basic("svc_raw", "unchecked") },
          op: { url: `${op.url}/token`, auth: basic(name, OP_SECRET) },
        };
        const shapes = {
          heimdall: await checkClientCredentials(targets.heimdall.url, targets.heimdall.auth, alg),
          raw: await checkClientCredentials(targets.raw.url, targets.raw.auth, alg),
          op: await checkClientCredentials(targets.op.url, targets.op.auth, alg),
        };
        if (alg === "RS256") {
          claimShapes = `Claims of the RS256 tokens (the others alike) — Heimdall: ${shapes.heimdall.claims.join(", ")}; raw jose: ${shapes.raw.claims.join(", ")}; oidc-provider: ${shapes.op.claims.join(", ")}.`;
        }
        const h = await measured(targets.heimdall.url, targets.heimdall.auth);
        const r = await measured(targets.raw.url, targets.raw.auth);
        const o = await measured(targets.op.url, targets.op.auth);
        // The production configuration on RS256 only: the algorithm the targets name first.
        const p =
          alg === "RS256"
            ? await measured(
                targets.heimdall.url.replace(heimdall.url, production.url),
                targets.heimdall.auth,
              )
            : undefined;
        for (const [who, result] of [
          ["Heimdall", h],
          ["raw jose", r],
          ["oidc-provider", o],
          ...(p ? ([["Heimdall (production configuration)", p]] as const) : []),
        ] as const) {
          if (result.non2xx + result.errors > 0) {
            problems.push(`${who} ${alg}: ${result.non2xx} non-2xx, ${result.errors} errors`);
          }
        }
        rows.push(
          loadRow(`${alg} · Heimdall \`POST /v1/apps/{app}/tokens\``, h, shapes.heimdall.length),
          loadRow(`${alg} · raw \`jose\` on bare Hono (ceiling)`, r, shapes.raw.length),
          loadRow(`${alg} · oidc-provider 9.13.3 \`POST /token\``, o, shapes.op.length),
          ...(p
            ? [
                loadRow(
                  `${alg} · Heimdall \`POST /v1/apps/{app}/tokens\`, production configuration`,
                  p,
                  shapes.heimdall.length,
                ),
              ]
            : []),
        );
        const ratioRow = (configuration: Configuration, result: LoadResult) => {
          const label = `${alg}, ${where}${configuration === "production" ? `, ${configurationLabel.production}` : ""}`;
          return [
            configuration === "production" ? `${alg}, ${configurationLabel.production}` : alg,
            judgedOnPostgres(
              "client-credentials-raw",
              result.requestsPerSecond / r.requestsPerSecond,
              label,
            ),
            judgedOnPostgres(
              "client-credentials-oidc-provider",
              result.requestsPerSecond / o.requestsPerSecond,
              label,
            ),
            `${fmt(r.requestsPerSecond / o.requestsPerSecond, 2)}×`,
            `${rssMiB()} MiB`,
          ];
        };
        ratios.push(ratioRow("bench", h));
        if (p) ratios.push(ratioRow("production", p));
        if (alg === "RS256") rs256Ceiling = r.requestsPerSecond;
      }

      // 3: refresh rotation, N chains each. Heimdall: N sessions of one user (password grants
      // at the production argon2 cost: they are set-up, not measured).
      await call(heimdall.url, "/v1/apps", {
        body: { name: CHAIN_CLIENT, display_name: "Chains" },
      });
      const email = "chains@bench.test";
      await call(heimdall.url, `/v1/apps/${CHAIN_CLIENT}/users`, {
        body: { email, password: PASSWORD },
      });
      const heimdallToken = async () => {
        const res = await fetch(`${heimdall.url}/v1/apps/${CHAIN_CLIENT}/tokens`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ grant_type: "password", email, password: PASSWORD }),
        });
        const body = (await res.json()) as { refresh_token?: string };
        if (!res.ok || !body.refresh_token) throw new Error(`password grant: ${res.status}`);
        return body.refresh_token;
      };
      const heimdallRefresh: ChainRequest = {
        url: `${heimdall.url}/v1/apps/${CHAIN_CLIENT}/tokens/refresh`,
        format: "json",
        tokenField: "refresh_token",
      };
      const opRefresh: ChainRequest = {
        url: `${op.url}/token`,
        headers: { Authorization: basic(CHAIN_CLIENT, OP_SECRET) },
        format: "form",
        fields: { grant_type: "refresh_token" },
        tokenField: "refresh_token",
      };
      // Both rotate for real: a new token each time, an RS256 at+jwt, no ID token, the old one
      // refused (and, on both, its whole session or grant ended) — on one token outside the chains.
      await checkRotation(heimdallRefresh, await heimdallToken());
      await checkRotation(opRefresh, await opRefreshToken(op.url));
      const heimdallTokens: string[] = [];
      for (let i = 0; i < CONNECTIONS; i++) heimdallTokens.push(await heimdallToken());
      const opTokens: string[] = [];
      for (let i = 0; i < CONNECTIONS; i++) opTokens.push(await opRefreshToken(op.url));

      const hr = await measuredChains(heimdallRefresh, heimdallTokens);
      const or = await measuredChains(opRefresh, opTokens);
      for (const [who, result] of [
        ["Heimdall refresh", hr],
        ["oidc-provider refresh", or],
      ] as const) {
        if (result.errors > 0)
          problems.push(`${who}: ${result.errors} errors (${result.firstError})`);
      }
      const refreshRss = rssMiB();
      const chainFailures = (result: ChainResult) =>
        result.errors === 0 ? "0" : `**${fmt(result.errors)}**`;
      const seconds = (performance.now() - started) / 1000;

      return [
        `## Token issuance on ${where}`,
        "",
        `One run, ${fmt(seconds)} s in all; Heimdall on ${db.label}, ${durability}; 1-minute load average ${fmt(loadBefore, 1)} on ${cpus().length} cores before the first run. Each server runs in the bench process on loopback and is loaded alone, from a separate process, with ${CONNECTIONS} keep-alive connections (or chains) for ${SECONDS} s after a ${WARMUP_SECONDS}-s warm-up. Latencies are the load generator's.`,
        "",
        `**\`client_credentials\`** (autocannon). Every client sends what a real one does: \`POST\`, HTTP Basic \`client_id:client_secret\`, form body \`grant_type=client_credentials\`; the answer is checked once before each run to be an \`at+jwt\` of the algorithm.`,
        "",
        `- Heimdall: one app per algorithm (\`PATCH /v1/apps/{app}/settings {signing_algorithm}\`), a service credential with ${PERMISSIONS.length} permissions.`,
        "- Raw `jose` (the ceiling): a bare Hono app on `@hono/node-server`, as Heimdall is served, whose one route reads the form, signs claims of the same shape with `SignJWT` and a key of the same kind and size (`jose.generateKeyPair`, as Heimdall's: RSA 2048, P-256, Ed25519), and answers the same JSON. It checks no credential and touches no database.",
        '- oidc-provider 9.13.3 (on the same jose 6): `features.clientCredentials`, one `client_secret_basic` client per algorithm, `features.resourceIndicators` defaulting each client to its resource server, whose `getResourceServerInfo` gives `accessTokenFormat: "jwt"` and `jwt.sign.alg`, and `extraTokenClaims` adding `app`, `roles`, `permissions`; `provider.callback()` (Koa) on `node:http`, its default in-memory adapter. All three algorithms could be configured.',
        "",
        claimShapes,
        "",
        "Not equivalent:",
        "",
        `- The database is on Heimdall's hot path for this grant: the app and the credential are looked up by name and client id (the signing key is cached), the credential's use and an \`auth.client.succeeded\` audit event are written — ${kind === "postgres" ? "over node-postgres to the local server, a loopback round trip, with the server's CPU on the same 2 cores" : "on PGlite, single-threaded WASM in the server's own event loop"}. Neither oidc-provider (static clients, JWT access tokens not stored) nor raw jose does any I/O.`,
        "- Heimdall hashes the presented secret (SHA-256) to compare it with the stored hash and the pre-rotation one; oidc-provider compares the plain secret of its configuration.",
        "- oidc-provider's answer carries no `scope` (none was asked for; the permissions are in the token), Heimdall's lists the credential's permissions.",
        "",
        table(["server · endpoint", "req/s", "p50", "p99", "non-2xx / errors", "JWT chars"], rows),
        "",
        table(
          [
            "algorithm",
            "Heimdall / raw jose",
            "Heimdall / oidc-provider",
            "raw jose / oidc-provider",
            "RSS at the end",
          ],
          ratios,
        ),
        "",
        "raw jose / oidc-provider is the same ratio for a server that authenticates nothing, stores nothing and only signs: no server on this stack can be much above it, whatever the target.",
        "",
        `The ${configurationLabel.production} row is a second Heimdall on the same database and app: \`LOG_LEVEL=info\` through the real logger (one JSON line per request, written once per turn to /dev/null as the Node entry writes stdout) and the memory rate limiter counting every request against limits no run reaches; its ratios are to the same raw jose and oidc-provider runs.`,
        "",
        `RSS is that of the bench process, where Heimdall${kind === "pglite" ? " (with PGlite)" : ""}, the raw apps and oidc-provider all live: it grows with each server started, and is not any one server's footprint.`,
        "",
        `**Refresh rotation** (bench/load-chains.ts in its own process). ${CONNECTIONS} chains at once, each posting its refresh token, taking the new one from the answer and posting that; a non-2xx ends a chain and counts as an error. The warm-up hands its live tokens on to the measured run. Checked once on a token outside the chains, on both: a new refresh token, an RS256 \`at+jwt\`, no ID token, and the spent token refused with \`invalid_grant\`.`,
        "",
        `- Heimdall: \`POST /v1/apps/{app}/tokens/refresh {"refresh_token"}\` (JSON, no client authentication), ${CONNECTIONS} sessions of one user from password grants at the production argon2 cost (set-up; refresh hashes no password). A refresh checks the token with its session, user, client and bans and rotates it in one statement (the old token marked spent, its successor stored, the session touched, an audit event), commits that on ${where} (${durability}), then signs an RS256 access token.`,
        `- oidc-provider: \`POST /token\` \`grant_type=refresh_token\` with \`client_secret_basic\`, \`rotateRefreshToken: true\`; starting tokens from ${CONNECTIONS} authorization code flows (PKCE, \`offline_access\`, \`prompt=consent\`, a fresh browser each, hence ${CONNECTIONS} grants), scope without \`openid\` (no ID token, as Heimdall issues none), the RS256 JWT resource server above. Not equivalent: its refresh tokens and grants live in its in-memory development adapter (an LRU of 1,000 entries, "development-only" by its own warning), so no database at all against Heimdall's ${where}; and it authenticates the client, which Heimdall's first-party refresh does not.`,
        "",
        table(
          ["server · endpoint", "req/s", "p50", "p99", "errors"],
          [
            [
              "Heimdall `POST /v1/apps/{app}/tokens/refresh`",
              fmt(hr.requestsPerSecond),
              ms(hr.p50),
              ms(hr.p99),
              chainFailures(hr),
            ],
            [
              "oidc-provider `POST /token` (refresh_token)",
              fmt(or.requestsPerSecond),
              ms(or.p50),
              ms(or.p99),
              chainFailures(or),
            ],
            [
              "Heimdall refresh rate",
              judgedOnPostgres("refresh-rate", hr.requestsPerSecond),
              "",
              "",
              "",
            ],
            [
              "ratio Heimdall refresh / RS256 signing alone (raw jose above)",
              judgedOnPostgres("refresh-signing", hr.requestsPerSecond / rs256Ceiling),
              "",
              "",
              "",
            ],
            [
              "ratio Heimdall / oidc-provider",
              `${fmt(hr.requestsPerSecond / or.requestsPerSecond, 2)}×`,
              "",
              "",
              "",
            ],
            [
              "RS256 signing alone (raw jose above) / oidc-provider refresh",
              `${fmt(rs256Ceiling / or.requestsPerSecond, 2)}×`,
              "",
              "",
              "",
            ],
          ],
        ),
        "",
        `RSS of the bench process at the end of the refresh runs: ${refreshRss} MiB.`,
        "",
        problems.length === 0
          ? "Every measured request answered 2xx, with no connection errors."
          : `**Failures:** ${problems.join("; ")}.`,
        "",
      ].join("\n");
    } finally {
      for (const raw of raws) await raw.close();
      await op.close();
      await production.close();
      await heimdall.close();
      await db.dispose();
    }
  },
});
