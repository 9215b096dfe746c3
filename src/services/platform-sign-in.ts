import { and, eq, gt, isNull, lt } from "drizzle-orm";
import {
  authorizationCodeGrant,
  buildAuthorizationUrl,
  ClientError,
  calculatePKCECodeChallenge,
  fetchUserInfo,
  randomNonce,
  randomPKCECodeVerifier,
  randomState,
} from "openid-client";
import { platformLogins, users } from "../db/schema";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { type AppRecord, assertAppActive } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import {
  assertUserMaySignIn,
  createPlatformUser,
  linkIdentity,
  type ProviderProfile,
  profileOf,
  type Resolution,
  resolveUser,
} from "./platform-accounts";
import { configurationOf, providerFailure } from "./platform-providers";
import { findPlatformByName, type PlatformRecord } from "./platforms";
import { platformMessages } from "./platforms.messages";
import { openSession, type TokenResponse, tokensFor } from "./session-tokens";
import { emailVerificationRefusal, mfaChallenge } from "./sign-in-rules";
import type { UserRecord } from "./users";

/** How long a sign-in at a platform may take, from the redirect to the callback. */
const LOGIN_TTL_MS = 10 * 60_000;

type PlatformLogin = typeof platformLogins.$inferSelect;

/** `{issuerBase}/v1/apps/{app}/platforms/{name}/callback`: registered at the provider. */
export function callbackUrl(appIssuer: string, platformName: string) {
  return `${appIssuer}/platforms/${encodeURIComponent(platformName)}/callback`;
}

/**
 * Starts a sign-in: a random `state` (stored as its hash), `nonce` and PKCE verifier (stored
 * encrypted), valid 10 minutes; answers the provider's authorization URL to redirect to.
 */
export async function startPlatformLogin(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    platformName: string;
    redirectUri: string;
    /** A signed-in user linking the provider to their own account. */
    linkUserId?: string | undefined;
  },
): Promise<URL> {
  assertAppActive(app, "forbidden");
  const platform = await findPlatformByName(ctx, app, input.platformName);
  const config = await configurationOf(ctx, platform);
  const state = randomState();
  const nonce = randomNonce();
  const verifier = randomPKCECodeVerifier();
  const scopes = platform.scopes.includes("openid")
    ? platform.scopes
    : ["openid", ...platform.scopes];
  const url = buildAuthorizationUrl(config, {
    redirect_uri: input.redirectUri,
    response_type: "code",
    scope: scopes.join(" "),
    state,
    nonce,
    code_challenge: await calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
  });
  const now = ctx.clock.now();
  const sealedVerifier = await ctx.sealer.encrypt(verifier);
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
      link_user_id: input.linkUserId ?? null,
      expires_at: new Date(now.getTime() + LOGIN_TTL_MS),
      created_at: now,
    });
  });
  return url;
}

/**
 * Finishes a sign-in at the provider's redirect: spends the `state` (once, atomically), exchanges
 * the code with the PKCE verifier, validates the ID token (issuer, audience, signature, nonce),
 * links or creates the user and opens a session. Answers Heimdall's tokens.
 */
export async function completePlatformLogin(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    platformName: string;
    redirectUri: string;
    /** The callback's query string as the provider sent it (code, state, iss, or error). */
    params: URLSearchParams;
    issuer: string;
  },
): Promise<TokenResponse> {
  assertAppActive(app, "forbidden");
  const platform = await findPlatformByName(ctx, app, input.platformName);
  const { login, state } = await spendLoginState(ctx, platform, input.params);
  const profile = await providerProfile(ctx, platform, login, state, input);
  const resolution = await resolveUser(ctx, app, platform, profile, login.link_user_id);
  if (resolution.kind !== "new") {
    await assertUserMaySignIn(ctx, app, platform, resolution.user);
    const unverified =
      !provesEmail(profile, resolution.user) && emailVerificationRefusal(app, resolution.user);
    if (unverified) throw unverified;
  }
  const { user, session } = await signInResolvedUser(ctx, app, platform, profile, resolution);
  if (!session) throw await mfaChallenge(ctx, app, user, input.issuer);
  return tokensFor(ctx, app, user, session, input.issuer);
}

/** The sign-in a callback's `state` names, spent here, once: of two callbacks, one gets it. */
async function spendLoginState(
  ctx: ServiceContext,
  platform: PlatformRecord,
  params: URLSearchParams,
): Promise<{ login: PlatformLogin; state: string }> {
  const state = params.get("state");
  const unknownState = () => new ApiError("invalid_request", platformMessages.unknownState);
  if (!state) throw unknownState();
  const now = ctx.clock.now();
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
  return { login, state };
}

/**
 * Exchanges the code at the provider (PKCE verifier, state and nonce checked) and answers who
 * the validated ID token says the user is, with the UserInfo endpoint's claims when the ID token
 * lacks the mapped ones.
 */
async function providerProfile(
  ctx: ServiceContext,
  platform: PlatformRecord,
  login: PlatformLogin,
  state: string,
  input: { redirectUri: string; params: URLSearchParams },
): Promise<ProviderProfile> {
  const config = await configurationOf(ctx, platform);
  const currentUrl = new URL(input.redirectUri);
  for (const [name, value] of input.params) currentUrl.searchParams.append(name, value);
  try {
    const tokens = await authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: await ctx.sealer.decrypt(login.code_verifier_encrypted),
      expectedState: state,
      expectedNonce: login.nonce,
    });
    const idToken = tokens.claims();
    if (!idToken) throw new ClientError("the token response has no ID token");
    let claims: Record<string, unknown> = { ...idToken };
    const mapping = platform.claim_mapping;
    const missing = [mapping.email ?? "email", mapping.name ?? "name", "email_verified"].some(
      (claim) => claims[claim] === undefined,
    );
    // Many providers (oidc-provider among them) keep profile claims out of the ID token when an
    // access token comes with it: ask the UserInfo endpoint, which must name the same subject.
    if (missing && config.serverMetadata().userinfo_endpoint) {
      const info = await fetchUserInfo(config, tokens.access_token, idToken.sub);
      claims = { ...info, ...idToken };
    }
    return profileOf(platform, idToken.sub, claims);
  } catch (error) {
    throw providerFailure(ctx, platform, error);
  }
}

/** Whether the provider vouches for the user's own address (its `email_verified`, same email). */
function provesEmail(profile: ProviderProfile, user: Pick<UserRecord, "email">) {
  return profile.emailVerified && profile.email?.toLowerCase() === user.email.toLowerCase();
}

/**
 * In one audited transaction: the user created or linked as resolved, and a session opened;
 * no session when the user has 2FA on (the second factor completes the sign-in).
 */
function signInResolvedUser(
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  profile: ProviderProfile,
  resolution: Resolution,
) {
  return audited(
    ctx,
    async (tx, at) => {
      let user: UserRecord =
        resolution.kind === "new"
          ? await createPlatformUser(tx, ctx, app, platform, profile, at)
          : resolution.user;
      if (resolution.kind !== "linked") {
        await linkIdentity(tx, ctx, app, platform, profile, user, resolution.kind, at);
      }
      if (!user.email_verified_at && provesEmail(profile, user)) {
        await tx.update(users).set({ email_verified_at: at }).where(eq(users.id, user.id));
        user = { ...user, email_verified_at: at };
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
}
