import { and, asc, eq, gt, isNull, lt } from "drizzle-orm";
import {
  AuthorizationResponseError,
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  type ClientAuth,
  ClientError,
  ClientSecretBasic,
  ClientSecretPost,
  Configuration,
  calculatePKCECodeChallenge,
  customFetch,
  discovery,
  enableNonRepudiationChecks,
  fetchUserInfo,
  None,
  ResponseBodyError,
  randomNonce,
  randomPKCECodeVerifier,
  randomState,
  type ServerMetadata,
  WWWAuthenticateChallengeError,
} from "openid-client";
import { pageOf } from "../db/page";
import { platformLogins, platforms, userIdentities, users } from "../db/schema";
import { type Cipher, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { createTtlCache } from "../lib/ttl-cache";
import type { Clock, Database, Logger } from "../ports";
import { mfaTokenProfile, signAccessToken } from "./access-tokens";
import { type AppRecord, settingsOf } from "./apps";
import { audited, recordAudit } from "./audit";
import { isUserBanned } from "./bans";
import type { ServiceContext } from "./context";
import type { KeyRing } from "./keys";
import { OutboundError, type OutboundPolicy } from "./outbound";
import { openSession, type TokenResponse, tokensFor } from "./sessions";
import { findUserByEmail, type UserRecord } from "./users";

export type PlatformRecord = typeof platforms.$inferSelect;
export type PlatformView = Omit<PlatformRecord, "client_secret_encrypted">;

/** How long a sign-in at a platform may take, from the redirect to the callback. */
const LOGIN_TTL_MS = 10 * 60_000;
/** How long a provider's configuration (discovery document, JWKS) is reused per isolate. */
const CONFIGURATION_TTL_MS = 5 * 60_000;
const MAX_CACHED_CONFIGURATIONS = 1_000;
/** Same as a password sign-in's: how long the second-factor challenge stays valid. */
const MFA_TOKEN_TTL_SECONDS = 300;

const ENDPOINT_FIELDS = [
  "issuer",
  "authorization_endpoint",
  "token_endpoint",
  "jwks_uri",
  "userinfo_endpoint",
] as const;

export function platformView(row: PlatformRecord): PlatformView {
  const { client_secret_encrypted: _secret, ...fields } = row;
  return fields;
}

const noSuchPlatform = () => new ApiError("not_found", "No such platform in this app");
const nameTaken = () => new ApiError("conflict", "Another platform of this app has that name");

export async function findPlatform(db: Database, appId: string, id: string) {
  const [row] = await db
    .select()
    .from(platforms)
    .where(and(eq(platforms.app_id, appId), eq(platforms.id, id)));
  if (!row) throw noSuchPlatform();
  return row;
}

export async function findPlatformByName(db: Database, appId: string, name: string) {
  const [row] = await db
    .select()
    .from(platforms)
    .where(and(eq(platforms.app_id, appId), eq(platforms.name, name)));
  if (!row) throw noSuchPlatform();
  return row;
}

export async function listPlatforms(
  db: Database,
  appId: string,
  page: { limit: number; offset: number },
) {
  const where = eq(platforms.app_id, appId);
  const { rows, total } = await pageOf(db, platforms, { where, order: [asc(platforms.id)], page });
  return { data: rows.map(platformView), total };
}

export interface PlatformInput {
  display_name: string;
  issuer: string;
  authorization_endpoint?: string | undefined;
  token_endpoint?: string | undefined;
  jwks_uri?: string | undefined;
  userinfo_endpoint?: string | undefined;
  client_id: string;
  client_secret?: string | undefined;
  scopes: string[];
  claim_mapping: { email?: string | undefined; name?: string | undefined };
  /** Only the platform admin may set it (checked by the caller, which knows who asks). */
  trusted?: boolean | undefined;
}

/** What managing platforms needs beyond the request: the sealer, and the outbound policy. */
export interface PlatformAdminDeps {
  sealer: Cipher;
  /** Every provider URL is one Heimdall will fetch: checked by the outbound policy at save. */
  outbound: OutboundPolicy;
}

const assertFetchableUrls = (deps: PlatformAdminDeps, input: Partial<PlatformInput>) =>
  deps.outbound.assertAllowed(
    Object.fromEntries(ENDPOINT_FIELDS.map((field) => [field, input[field]])),
  );

const withoutUndefined = (mapping: PlatformInput["claim_mapping"]) =>
  Object.fromEntries(
    Object.entries(mapping).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );

export async function createPlatform(
  ctx: ServiceContext,
  deps: PlatformAdminDeps,
  app: AppRecord,
  input: PlatformInput & { name: string },
): Promise<PlatformView> {
  await assertFetchableUrls(deps, input);
  const secret = input.client_secret ? await deps.sealer.encrypt(input.client_secret) : null;
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [inserted] = await tx
        .insert(platforms)
        .values({
          id: newId("plt"),
          app_id: app.id,
          name: input.name,
          display_name: input.display_name,
          issuer: input.issuer,
          authorization_endpoint: input.authorization_endpoint ?? null,
          token_endpoint: input.token_endpoint ?? null,
          jwks_uri: input.jwks_uri ?? null,
          userinfo_endpoint: input.userinfo_endpoint ?? null,
          client_id: input.client_id,
          client_secret_encrypted: secret,
          scopes: input.scopes,
          claim_mapping: withoutUndefined(input.claim_mapping),
          trusted: input.trusted ?? false,
          created_at: now,
          updated_at: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!inserted) throw nameTaken();
      return inserted;
    },
    (inserted) => ({
      appId: app.id,
      action: "platform.created",
      target: { type: "platform", id: inserted.id },
      metadata: { name: inserted.name, issuer: inserted.issuer },
    }),
  );
  return platformView(row);
}

/** Changes only the fields given; a new `client_secret` replaces the stored one. */
export async function updatePlatform(
  ctx: ServiceContext,
  deps: PlatformAdminDeps,
  app: AppRecord,
  id: string,
  changes: Partial<PlatformInput>,
): Promise<PlatformView> {
  await findPlatform(ctx.db, app.id, id);
  await assertFetchableUrls(deps, changes);
  const { client_secret: secret, claim_mapping: mapping, ...fields } = changes;
  const sealed = secret === undefined ? undefined : await deps.sealer.encrypt(secret);
  const row = await audited(
    ctx,
    async (tx, now) => {
      const [updated] = await tx
        .update(platforms)
        .set({
          ...fields,
          ...(sealed === undefined ? {} : { client_secret_encrypted: sealed }),
          ...(mapping === undefined ? {} : { claim_mapping: withoutUndefined(mapping) }),
          updated_at: now,
        })
        .where(and(eq(platforms.app_id, app.id), eq(platforms.id, id)))
        .returning();
      if (!updated) throw noSuchPlatform();
      return updated;
    },
    {
      appId: app.id,
      action: "platform.updated",
      target: { type: "platform", id },
      metadata: { fields: Object.keys(changes) },
    },
  );
  return platformView(row);
}

/** Deletes a platform; its users stay, their links to it (and sign-ins under way) go. */
export async function deletePlatform(ctx: ServiceContext, app: AppRecord, id: string) {
  const platform = await findPlatform(ctx.db, app.id, id);
  await audited(
    ctx,
    (tx) => tx.delete(platforms).where(and(eq(platforms.app_id, app.id), eq(platforms.id, id))),
    {
      appId: app.id,
      action: "platform.deleted",
      target: { type: "platform", id },
      metadata: { name: platform.name },
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Sign-in at a platform (OpenID Connect authorization code flow with PKCE, openid-client).

/**
 * Per-isolate cache of providers' openid-client configurations: the discovery document, and the
 * JWKS openid-client fetches into it. Keyed by platform id and its `updated_at`, so a PATCH takes
 * effect at once; entries expire after 5 minutes so a provider's changes are picked up.
 */
export function createProviderCache(clock: Clock) {
  return createTtlCache<Configuration>({
    ttlMs: CONFIGURATION_TTL_MS,
    maxEntries: MAX_CACHED_CONFIGURATIONS,
    now: () => clock.now().getTime(),
  });
}

export type ProviderCache = ReturnType<typeof createProviderCache>;

let cachesByOwner: WeakMap<object, ProviderCache> | undefined;

/**
 * The provider cache of one app instance (pass its ports), made on first use: nothing is created
 * at import time, and two apps in one process (tests) do not share entries.
 */
export function providerCacheOf(owner: { clock: Clock }): ProviderCache {
  cachesByOwner ??= new WeakMap();
  let cache = cachesByOwner.get(owner);
  if (!cache) {
    cache = createProviderCache(owner.clock);
    cachesByOwner.set(owner, cache);
  }
  return cache;
}

export interface PlatformLoginDeps {
  sealer: Cipher;
  keys: KeyRing;
  logger: Logger;
  providers: ProviderCache;
  /** Every request to the provider goes through it (openid-client's `customFetch`). */
  outbound: OutboundPolicy;
}

/**
 * `client_secret_basic` is the default of OpenID Connect client registration; `client_secret_post`
 * when the provider says it takes only that; no authentication (PKCE alone) for a public client.
 */
function clientAuthentication(server: ServerMetadata, secret: string | undefined): ClientAuth {
  if (!secret) return None();
  const supported = server.token_endpoint_auth_methods_supported;
  if (
    supported &&
    !supported.includes("client_secret_basic") &&
    supported.includes("client_secret_post")
  ) {
    return ClientSecretPost(secret);
  }
  return ClientSecretBasic(secret);
}

/** openid-client's requests, through the outbound policy (its body types are the Fetch API's). */
const providerFetch =
  (outbound: OutboundPolicy): NonNullable<Configuration[typeof customFetch]> =>
  (url, options) =>
    outbound.fetch(url, options as RequestInit);

/**
 * The provider's metadata: the endpoints stored on the platform when all three that the flow
 * needs are there, else the issuer's discovery document (checked to name the same issuer) with
 * the stored endpoints overriding what it says.
 */
async function loadConfiguration(
  deps: PlatformLoginDeps,
  platform: PlatformRecord,
): Promise<Configuration> {
  const stored = Object.fromEntries(
    ENDPOINT_FIELDS.flatMap((field) => (platform[field] ? [[field, platform[field]]] : [])),
  ) as ServerMetadata;
  let server: ServerMetadata = stored;
  if (!(platform.authorization_endpoint && platform.token_endpoint && platform.jwks_uri)) {
    const discovered = await discovery(
      new URL(platform.issuer),
      platform.client_id,
      undefined,
      None(),
      {
        execute: [allowInsecureRequests],
        [customFetch]: providerFetch(deps.outbound),
      },
    );
    // A plain JSON copy: the metadata object carries helper functions structuredClone rejects.
    server = { ...JSON.parse(JSON.stringify(discovered.serverMetadata())), ...stored };
  }
  const secret = platform.client_secret_encrypted
    ? await deps.sealer.decrypt(platform.client_secret_encrypted)
    : undefined;
  const config = new Configuration(
    server,
    platform.client_id,
    secret ? { client_secret: secret } : undefined,
    clientAuthentication(server, secret),
  );
  config[customFetch] = providerFetch(deps.outbound);
  // The outbound policy is the one rule on schemes: http only to allow-listed hosts.
  allowInsecureRequests(config);
  // Check the ID token's signature against the provider's JWKS too, not only its claims.
  enableNonRepudiationChecks(config);
  return config;
}

async function configurationOf(deps: PlatformLoginDeps, platform: PlatformRecord) {
  try {
    return await deps.providers.get(`${platform.id}:${platform.updated_at.getTime()}`, () =>
      loadConfiguration(deps, platform),
    );
  } catch (error) {
    deps.logger.warn("platform provider configuration unavailable", {
      platform_id: platform.id,
      issuer: platform.issuer,
      ...describe(error),
    });
    throw providerUnavailable();
  }
}

/**
 * The one answer when the provider cannot be used, whatever the reason (refused by the outbound
 * policy, unreachable, timed out, a bad document), so it tells nothing about the network behind
 * the URL. The reason is in the warning logged where it happened, not carried here: the error
 * handler would take a network cause for one of Heimdall's own dependencies.
 */
const providerUnavailable = () =>
  new ApiError("service_unavailable", "The platform's identity provider is unavailable", {
    external: true,
  });

/** A provider failure's detail for the log (never `message`: that is the log event's own). */
function describe(error: unknown) {
  if (error instanceof ResponseBodyError) {
    return { error: error.error, error_description: error.error_description, status: error.status };
  }
  if (error instanceof AuthorizationResponseError) {
    return { error: error.error, error_description: error.error_description };
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      error: error.name,
      error_description: error.message,
      ...(typeof code === "string" ? { code } : {}),
      ...(error.cause instanceof Error ? { cause: error.cause.message } : {}),
    };
  }
  return { error: String(error) };
}

/**
 * What a failed exchange with the provider answers: its refusal (bad, reused or foreign code,
 * wrong PKCE verifier, an ID token that does not validate) is a 400 `invalid_grant`; not reaching
 * it is a 503. The provider's detail goes to the log.
 */
function providerFailure(deps: PlatformLoginDeps, platform: PlatformRecord, error: unknown) {
  const detail = describe(error);
  // The outbound policy fails with an OutboundError (a TypeError, like fetch's); timeouts are coded.
  const unreachable =
    error instanceof TypeError ||
    error instanceof OutboundError ||
    (error instanceof Error && error.cause instanceof OutboundError) ||
    (error instanceof ClientError && ["OAUTH_TIMEOUT", "OAUTH_ABORT"].includes(error.code ?? ""));
  deps.logger.warn("platform sign-in failed at the provider", {
    platform_id: platform.id,
    issuer: platform.issuer,
    ...detail,
  });
  if (unreachable) return providerUnavailable();
  if (error instanceof ResponseBodyError || error instanceof AuthorizationResponseError) {
    return new ApiError(
      "invalid_grant",
      `The identity provider refused the sign-in (${error.error})`,
      {
        cause: error,
      },
    );
  }
  if (error instanceof ClientError || error instanceof WWWAuthenticateChallengeError) {
    return new ApiError(
      "invalid_grant",
      `The identity provider's answer did not validate: ${
        error.cause instanceof Error ? error.cause.message : error.message
      }`,
      { cause: error },
    );
  }
  return error;
}

/** `{issuerBase}/v1/apps/{app}/platforms/{name}/callback`: registered at the provider. */
export function callbackUrl(appIssuer: string, platformName: string) {
  return `${appIssuer}/platforms/${encodeURIComponent(platformName)}/callback`;
}

function assertSigningIn(app: AppRecord) {
  if (app.status !== "active") throw new ApiError("forbidden", "The app is archived");
}

/**
 * Starts a sign-in: a random `state` (stored as its hash), `nonce` and PKCE verifier (stored
 * encrypted), valid 10 minutes; answers the provider's authorization URL to redirect to.
 */
export async function startPlatformLogin(
  ctx: ServiceContext,
  deps: PlatformLoginDeps,
  app: AppRecord,
  platformName: string,
  redirectUri: string,
  /** A signed-in user linking the provider to their own account. */
  linkUserId?: string,
): Promise<URL> {
  assertSigningIn(app);
  const platform = await findPlatformByName(ctx.db, app.id, platformName);
  const config = await configurationOf(deps, platform);
  const state = randomState();
  const nonce = randomNonce();
  const verifier = randomPKCECodeVerifier();
  const scopes = platform.scopes.includes("openid")
    ? platform.scopes
    : ["openid", ...platform.scopes];
  const url = buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    response_type: "code",
    scope: scopes.join(" "),
    state,
    nonce,
    code_challenge: await calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  const now = ctx.clock.now();
  const sealedVerifier = await deps.sealer.encrypt(verifier);
  await ctx.db.transaction(async (tx) => {
    // Sign-ins never finished are of no use once expired: tidy this platform's on the way.
    await tx
      .delete(platformLogins)
      .where(and(eq(platformLogins.platform_id, platform.id), lt(platformLogins.expires_at, now)));
    await tx.insert(platformLogins).values({
      state_hash: await sha256Hex(state),
      platform_id: platform.id,
      nonce,
      code_verifier_encrypted: sealedVerifier,
      link_user_id: linkUserId ?? null,
      expires_at: new Date(now.getTime() + LOGIN_TTL_MS),
      created_at: now,
    });
  });
  return url;
}

const stringClaim = (claims: Record<string, unknown>, name: string) => {
  const value = claims[name];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
};

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;

/** Who the provider says the user is, through the platform's claim mapping. */
function profileOf(platform: PlatformRecord, subject: string, claims: Record<string, unknown>) {
  const email = stringClaim(claims, platform.claim_mapping.email ?? "email");
  return {
    subject,
    email: email && email.length <= 254 && EMAIL_SHAPE.test(email) ? email : undefined,
    // Only a boolean `true`: a provider that does not vouch for the address links nobody by it.
    emailVerified: claims.email_verified === true,
    name: stringClaim(claims, platform.claim_mapping.name ?? "name")?.slice(0, 200),
  };
}

type Resolution =
  | { kind: "linked"; user: UserRecord }
  | { kind: "by_email"; user: UserRecord }
  | { kind: "signed_in"; user: UserRecord }
  | { kind: "new" };

/**
 * The Heimdall user of a provider account: the one already linked to `(platform, sub)`; else,
 * only when the provider says `email_verified: true`, the app's user with that email (linked
 * now) or a new user. An email the provider does not vouch for is refused (403) whether or not a
 * user has it: linking would hand that user's account to whoever typed the address, and creating
 * a user would let them claim it before its owner does (who would later be linked to it). The
 * refusal is the same either way, so it does not tell who has an account.
 *
 * A verified email links an existing user only when the platform admin marked the platform
 * `trusted`: anyone with `platforms:write` can add a provider that asserts any address. Else that
 * user links the provider themselves, signed in (`linkUserId`, from `…/link`).
 */
async function resolveUser(
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  profile: ReturnType<typeof profileOf>,
  linkUserId: string | null,
): Promise<Resolution> {
  const [linked] = await ctx.db
    .select({ user: users })
    .from(userIdentities)
    .innerJoin(users, eq(users.id, userIdentities.user_id))
    .where(
      and(eq(userIdentities.platform_id, platform.id), eq(userIdentities.subject, profile.subject)),
    );
  if (linked && linkUserId && linked.user.id !== linkUserId) {
    throw new ApiError("conflict", "This provider account is linked to another user");
  }
  if (linked) return { kind: "linked", user: linked.user };
  if (linkUserId) {
    const [user] = await ctx.db
      .select()
      .from(users)
      .where(and(eq(users.app_id, app.id), eq(users.id, linkUserId)));
    if (!user) throw new ApiError("forbidden", "This user cannot sign in");
    return { kind: "signed_in", user };
  }
  const emailClaim = platform.claim_mapping.email ?? "email";
  if (!profile.email) {
    throw new ApiError(
      "unprocessable",
      `The identity provider gave no usable email (claim ${emailClaim}); a user needs one`,
    );
  }
  const existing = await findUserByEmail(ctx.db, app.id, profile.email);
  /** A refused platform sign-in, audited against the account the email belongs to, if any. */
  const auditRefusal = (reason: string) =>
    recordAudit(
      ctx.db,
      ctx.audit,
      {
        appId: app.id,
        action: "auth.login.failed",
        actor: { type: "anonymous", id: null },
        ...(existing ? { target: { type: "user", id: existing.id } } : {}),
        metadata: { reason, platform: platform.name },
      },
      ctx.clock.now(),
    );
  if (!profile.emailVerified) {
    await auditRefusal("email_unverified");
    throw new ApiError(
      "forbidden",
      "The identity provider does not say this email is verified (email_verified); only verified addresses sign in the first time",
    );
  }
  if (existing && !platform.trusted) {
    await auditRefusal("link_required");
    throw new ApiError(
      "conflict",
      `This address has an account: sign in to it, then link ${platform.name} at POST /v1/users/me/platforms/${platform.name}/link`,
    );
  }
  return existing ? { kind: "by_email", user: existing } : { kind: "new" };
}

/** A deactivated or banned user is refused (403), audited like a refused password sign-in. */
async function assertMaySignIn(
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  user: UserRecord,
) {
  const now = ctx.clock.now();
  const reason =
    user.status !== "active"
      ? "user_deactivated"
      : (await isUserBanned(ctx.db, user.id, now))
        ? "user_banned"
        : undefined;
  if (!reason) return;
  await recordAudit(
    ctx.db,
    ctx.audit,
    {
      appId: app.id,
      action: "auth.login.failed",
      actor: { type: "anonymous", id: user.id },
      target: { type: "user", id: user.id },
      metadata: { reason, platform: platform.name },
    },
    now,
  );
  throw new ApiError("forbidden", "This user cannot sign in");
}

/**
 * Finishes a sign-in at the provider's redirect: spends the `state` (once, atomically), exchanges
 * the code with the PKCE verifier, validates the ID token (issuer, audience, signature, nonce),
 * links or creates the user and opens a session. Answers Heimdall's tokens.
 */
export async function completePlatformLogin(
  ctx: ServiceContext,
  deps: PlatformLoginDeps,
  app: AppRecord,
  input: {
    platformName: string;
    redirectUri: string;
    /** The callback's query string as the provider sent it (code, state, iss, or error). */
    params: URLSearchParams;
    issuer: string;
  },
): Promise<TokenResponse> {
  assertSigningIn(app);
  const platform = await findPlatformByName(ctx.db, app.id, input.platformName);
  const state = input.params.get("state");
  const unknownState = () => new ApiError("invalid_request", "unknown or used state");
  if (!state) throw unknownState();
  const now = ctx.clock.now();
  // Spent here, once: of two callbacks with the same state, one gets the row, the other nothing.
  const [login] = await ctx.db
    .update(platformLogins)
    .set({ used_at: now })
    .where(
      and(
        eq(platformLogins.state_hash, await sha256Hex(state)),
        eq(platformLogins.platform_id, platform.id),
        isNull(platformLogins.used_at),
        gt(platformLogins.expires_at, now),
      ),
    )
    .returning();
  if (!login) throw unknownState();

  const config = await configurationOf(deps, platform);
  const currentUrl = new URL(input.redirectUri);
  for (const [name, value] of input.params) currentUrl.searchParams.append(name, value);
  let claims: Record<string, unknown>;
  let subject: string;
  try {
    const tokens = await authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: await deps.sealer.decrypt(login.code_verifier_encrypted),
      expectedState: state,
      expectedNonce: login.nonce,
    });
    const idToken = tokens.claims();
    if (!idToken) throw new ClientError("the token response has no ID token");
    subject = idToken.sub;
    claims = { ...idToken };
    const mapping = platform.claim_mapping;
    const missing = [mapping.email ?? "email", mapping.name ?? "name", "email_verified"].some(
      (claim) => claims[claim] === undefined,
    );
    // Many providers (oidc-provider among them) keep profile claims out of the ID token when an
    // access token comes with it: ask the UserInfo endpoint, which must name the same subject.
    if (missing && config.serverMetadata().userinfo_endpoint) {
      const info = await fetchUserInfo(config, tokens.access_token, subject);
      claims = { ...info, ...idToken };
    }
  } catch (error) {
    throw providerFailure(deps, platform, error);
  }

  const profile = profileOf(platform, subject, claims);
  const resolution = await resolveUser(ctx, app, platform, profile, login.link_user_id);
  if (resolution.kind !== "new") await assertMaySignIn(ctx, app, platform, resolution.user);

  const { user, session } = await audited(
    ctx,
    async (tx, at) => {
      let user: UserRecord;
      if (resolution.kind === "new") {
        const [created] = await tx
          .insert(users)
          .values({
            id: newId("usr"),
            app_id: app.id,
            email: profile.email ?? "",
            display_name: profile.name ?? null,
            password_hash: null,
            created_at: at,
            updated_at: at,
          })
          .onConflictDoNothing()
          .returning();
        if (!created) {
          throw new ApiError("conflict", "A user with this email exists in this app already");
        }
        user = created;
        await recordAudit(
          tx,
          ctx.audit,
          {
            appId: app.id,
            action: "user.created",
            actor: { type: "user", id: user.id },
            target: { type: "user", id: user.id },
            metadata: { roles: [], platform: platform.name },
          },
          at,
        );
      } else {
        user = resolution.user;
      }
      if (resolution.kind !== "linked") {
        const [inserted] = await tx
          .insert(userIdentities)
          .values({
            platform_id: platform.id,
            subject: profile.subject,
            user_id: user.id,
            email: profile.email ?? null,
            created_at: at,
          })
          .onConflictDoNothing()
          .returning();
        // A concurrent first sign-in of the same account linked it first: refuse, never relink.
        if (!inserted) throw new ApiError("conflict", "This account was linked meanwhile; retry");
        await recordAudit(
          tx,
          ctx.audit,
          {
            appId: app.id,
            action: "identity.linked",
            actor: { type: "user", id: user.id },
            target: { type: "user", id: user.id },
            metadata: {
              platform: platform.name,
              platform_id: platform.id,
              via:
                resolution.kind === "new"
                  ? "new_user"
                  : resolution.kind === "signed_in"
                    ? "signed_in"
                    : "verified_email",
            },
          },
          at,
        );
      }
      if (user.totp_enabled_at) return { user, session: undefined };
      await tx.update(users).set({ last_login_at: at }).where(eq(users.id, user.id));
      return { user, session: await openSession(tx, ctx, app, user.id, at) };
    },
    (result) => ({
      appId: app.id,
      action: result.session ? "auth.platform.login" : "auth.login.mfa_required",
      actor: { type: "user", id: result.user.id },
      target: result.session
        ? { type: "session", id: result.session.sessionId }
        : { type: "user", id: result.user.id },
      metadata: { platform: platform.name, platform_id: platform.id },
    }),
  );
  if (!session) throw await secondFactorRequired(ctx, app, user, input.issuer);
  return tokensFor(ctx, app, user, session, input.issuer);
}

/**
 * A user who turned on 2FA gives their second factor after a platform sign-in too: the same
 * `mfa_required` challenge a password sign-in answers, completed with `grant_type=mfa_otp`.
 */
async function secondFactorRequired(
  ctx: ServiceContext,
  app: AppRecord,
  user: UserRecord,
  issuer: string,
) {
  const { token } = await signAccessToken(ctx, {
    issuer,
    app: { id: app.id, name: app.name, alg: settingsOf(app).signing_algorithm },
    subject: user.id,
    roles: [],
    permissions: [],
    ttlSeconds: MFA_TOKEN_TTL_SECONDS,
    profile: mfaTokenProfile,
  });
  return new ApiError(
    "mfa_required",
    "A second factor is required: send grant_type=mfa_otp with the mfa_token and otp (or recovery_code)",
    { mfaToken: token },
  );
}
