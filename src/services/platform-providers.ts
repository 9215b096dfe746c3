import {
  AuthorizationResponseError,
  allowInsecureRequests,
  type ClientAuth,
  ClientError,
  ClientSecretBasic,
  ClientSecretPost,
  Configuration,
  customFetch,
  discovery,
  enableNonRepudiationChecks,
  None,
  ResponseBodyError,
  type ServerMetadata,
  WWWAuthenticateChallengeError,
} from "openid-client";
import { ApiError } from "../lib/errors";
import { createTtlCache } from "../lib/ttl-cache";
import type { Clock } from "../ports";
import type { ServiceContext } from "./context";
import { OutboundError, type OutboundPolicy } from "./outbound";
import { ENDPOINT_FIELDS, type PlatformRecord } from "./platforms";
import { platformMessages } from "./platforms.messages";

/** How long a provider's configuration (discovery document, JWKS) is reused per isolate. */
const CONFIGURATION_TTL_MS = 5 * 60_000;
const MAX_CACHED_CONFIGURATIONS = 1_000;

/**
 * Per-isolate cache of providers' openid-client configurations: the discovery document, and the
 * JWKS openid-client fetches into it. Keyed by platform id and its `updated_at`, so a PATCH takes
 * effect at once; entries expire after 5 minutes so a provider's changes are picked up.
 */
function createProviderCache(clock: Clock) {
  return createTtlCache<Configuration>({
    ttlMs: CONFIGURATION_TTL_MS,
    maxEntries: MAX_CACHED_CONFIGURATIONS,
    now: () => clock.now().getTime(),
  });
}

type ProviderCache = ReturnType<typeof createProviderCache>;

let cachesByPolicy: WeakMap<OutboundPolicy, ProviderCache> | undefined;

/**
 * The provider cache of one app instance, made on first use: nothing is created at import time,
 * and two apps in one process (tests) do not share entries. It is kept with the instance's
 * outbound policy, through which every configuration in it was fetched.
 */
function providerCacheOf(ctx: ServiceContext): ProviderCache {
  cachesByPolicy ??= new WeakMap();
  let cache = cachesByPolicy.get(ctx.outbound);
  if (!cache) {
    cache = createProviderCache(ctx.clock);
    cachesByPolicy.set(ctx.outbound, cache);
  }
  return cache;
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
  ctx: ServiceContext,
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
        [customFetch]: providerFetch(ctx.outbound),
      },
    );
    // A plain JSON copy: the metadata object carries helper functions structuredClone rejects.
    server = { ...JSON.parse(JSON.stringify(discovered.serverMetadata())), ...stored };
  }
  const secret = platform.client_secret_encrypted
    ? await ctx.sealer.decrypt(platform.client_secret_encrypted)
    : undefined;
  const config = new Configuration(
    server,
    platform.client_id,
    secret ? { client_secret: secret } : undefined,
    clientAuthentication(server, secret),
  );
  config[customFetch] = providerFetch(ctx.outbound);
  // The outbound policy is the one rule on schemes: http only to allow-listed hosts.
  allowInsecureRequests(config);
  // Check the ID token's signature against the provider's JWKS too, not only its claims.
  enableNonRepudiationChecks(config);
  return config;
}

/** The provider's configuration, from the cache when it is there; a 503 when it cannot be had. */
export async function configurationOf(ctx: ServiceContext, platform: PlatformRecord) {
  try {
    return await providerCacheOf(ctx).get(`${platform.id}:${platform.updated_at.getTime()}`, () =>
      loadConfiguration(ctx, platform),
    );
  } catch (error) {
    ctx.logger.warn("platform provider configuration unavailable", {
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
  new ApiError("service_unavailable", platformMessages.providerUnavailable, { external: true });

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
export function providerFailure(ctx: ServiceContext, platform: PlatformRecord, error: unknown) {
  const detail = describe(error);
  // The outbound policy fails with an OutboundError (a TypeError, like fetch's); timeouts are coded.
  const unreachable =
    error instanceof TypeError ||
    error instanceof OutboundError ||
    (error instanceof Error && error.cause instanceof OutboundError) ||
    (error instanceof ClientError && ["OAUTH_TIMEOUT", "OAUTH_ABORT"].includes(error.code ?? ""));
  ctx.logger.warn("platform sign-in failed at the provider", {
    platform_id: platform.id,
    issuer: platform.issuer,
    ...detail,
  });
  if (unreachable) return providerUnavailable();
  if (error instanceof ResponseBodyError || error instanceof AuthorizationResponseError) {
    return new ApiError("invalid_grant", platformMessages.providerRefused(error.error), {
      cause: error,
    });
  }
  if (error instanceof ClientError || error instanceof WWWAuthenticateChallengeError) {
    return new ApiError(
      "invalid_grant",
      platformMessages.providerAnswerInvalid(
        error.cause instanceof Error ? error.cause.message : error.message,
      ),
      { cause: error },
    );
  }
  return error;
}
