import { and, asc, eq, isNull } from "drizzle-orm";
import { base64url, SignJWT } from "jose";
import { oauthClients, oauthCodes, oauthGrants, sessions, users } from "../db/schema";
import { type Cipher, randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { isSafeRedirectUri } from "../lib/redirect-uris";
import type { RevocationStore } from "../ports";
import { type AppRecord, settingsOf } from "./apps";
import { audited, recordAudit } from "./audit";
import type { ServiceContext } from "./context";
import { authenticateClient, type OAuthClientRecord } from "./oauth-clients";
import {
  endSession,
  maySignIn,
  openSession,
  type TokenDeps,
  type TokenResponse,
  tokensFor,
} from "./sessions";
import type { UserRecord } from "./users";

const CODE_TTL_MS = 60_000;
/** How long the login and consent pages may take, end to end. */
const TRANSACTION_TTL_MS = 10 * 60_000;
const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;
const PKCE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/** A validated authorization request, carried (encrypted) through the login and consent pages. */
export interface AuthorizationTransaction {
  /** Spent when the consent form is answered: one decision per signed-in transaction. */
  id: string;
  client_id: string;
  redirect_uri: string;
  scopes: string[];
  state?: string | undefined;
  nonce?: string | undefined;
  code_challenge: string;
  expires_at: number;
  /** Set once the user has signed in on the page. */
  user_id?: string;
  auth_time?: number;
}

/** Refused before the redirect URI is trusted: shown on the page, never redirected to. */
export class AuthorizationPageError extends Error {}

/** A refusal the client hears about at its redirect URI (RFC 6749 §4.1.2.1). */
export class AuthorizationRedirect extends Error {
  constructor(readonly location: string) {
    super("redirect");
  }
}

/** `redirect_uri?error=…&state=…&iss=…` */
export function errorRedirect(
  transaction: Pick<AuthorizationTransaction, "redirect_uri" | "state">,
  issuer: string,
  error: string,
  description: string,
) {
  const url = new URL(transaction.redirect_uri);
  url.searchParams.set("error", error);
  url.searchParams.set("error_description", description);
  if (transaction.state) url.searchParams.set("state", transaction.state);
  url.searchParams.set("iss", issuer);
  return new AuthorizationRedirect(url.toString());
}

/**
 * The redirect URI, when the client registers it exactly and it is safe to send a browser to
 * (a row saved before the redirect URI rule may hold one that is not); else a page error, so
 * nothing is ever redirected to it. Checked when a sign-in starts and again at each step, since
 * the client may have changed meanwhile.
 */
export function assertRedirectable(
  client: Pick<OAuthClientRecord, "redirect_uris">,
  redirectUri: string | undefined,
): string {
  if (
    !redirectUri ||
    !client.redirect_uris.includes(redirectUri) ||
    !isSafeRedirectUri(redirectUri)
  ) {
    throw new AuthorizationPageError("The redirect_uri is not registered for this client.");
  }
  return redirectUri;
}

/**
 * Checks `/authorize`'s query (RFC 6749 §4.1.1, PKCE S256 required as RFC 9700 asks). An
 * unknown client or a redirect URI that is not registered exactly is a page error; anything
 * else wrong is reported to the (now trusted) redirect URI.
 */
export async function startAuthorization(
  ctx: ServiceContext,
  app: AppRecord,
  query: Record<string, string | undefined>,
  issuer: string,
): Promise<{ client: OAuthClientRecord; transaction: AuthorizationTransaction }> {
  const [client] = query.client_id
    ? await ctx.db
        .select()
        .from(oauthClients)
        .where(and(eq(oauthClients.app_id, app.id), eq(oauthClients.id, query.client_id)))
    : [];
  if (!client) throw new AuthorizationPageError("Unknown client_id for this app.");
  const redirectUri = assertRedirectable(client, query.redirect_uri);
  const base = { redirect_uri: redirectUri, state: query.state?.slice(0, 1024) };
  const refuse = (error: string, description: string) =>
    errorRedirect(base, issuer, error, description);
  if (query.response_type !== "code") {
    throw refuse("unsupported_response_type", "Only response_type=code is supported");
  }
  if (query.code_challenge_method !== "S256" || !PKCE_CHALLENGE.test(query.code_challenge ?? "")) {
    throw refuse(
      "invalid_request",
      "PKCE is required: code_challenge with code_challenge_method=S256",
    );
  }
  const scopes = [...new Set((query.scope ?? "").split(" ").filter(Boolean))];
  const unknown = scopes.filter((scope) => !client.scopes.includes(scope));
  if (scopes.length === 0 || unknown.length > 0) {
    throw refuse(
      "invalid_scope",
      scopes.length === 0
        ? "A scope is required"
        : `Not allowed for this client: ${unknown.join(" ")}`,
    );
  }
  if (app.status !== "active") throw refuse("access_denied", "The app is archived");
  return {
    client,
    transaction: {
      id: transactionId(),
      client_id: client.id,
      redirect_uri: redirectUri,
      scopes,
      state: base.state,
      nonce: query.nonce?.slice(0, 1024),
      code_challenge: query.code_challenge as string,
      expires_at: ctx.clock.now().getTime() + TRANSACTION_TTL_MS,
    },
  };
}

export const transactionId = () => randomSecret("atx_", 16);

/**
 * Spends a transaction (a consent decision), atomically: a sealed form posted again, or twice
 * at once, gets a page error instead of a second code.
 */
export async function spendTransaction(
  revocations: RevocationStore,
  transaction: AuthorizationTransaction,
) {
  if (!(await revocations.spend(transaction.id, new Date(transaction.expires_at)))) {
    throw new AuthorizationPageError("This sign-in was answered already; start again.");
  }
}

export const sealTransaction = (sealer: Cipher, transaction: AuthorizationTransaction) =>
  sealer.encrypt(JSON.stringify(transaction));

/** The transaction a page posted back; tampered or expired ones are refused. */
export async function openTransaction(
  sealer: Cipher,
  sealed: string | undefined,
  now: Date,
): Promise<AuthorizationTransaction> {
  let transaction: AuthorizationTransaction;
  try {
    transaction = JSON.parse(await sealer.decrypt(sealed ?? ""));
  } catch {
    throw new AuthorizationPageError("The sign-in form is not valid; start again.");
  }
  if (typeof transaction.id !== "string" || transaction.id === "") {
    throw new AuthorizationPageError("The sign-in form is not valid; start again.");
  }
  if (transaction.expires_at < now.getTime()) {
    throw new AuthorizationPageError("The sign-in took too long; start again.");
  }
  return transaction;
}

/** Whether the user has allowed the client these scopes before (the consent page is skipped). */
export async function alreadyGranted(
  ctx: ServiceContext,
  userId: string,
  transaction: AuthorizationTransaction,
) {
  const [grant] = await ctx.db
    .select()
    .from(oauthGrants)
    .where(and(eq(oauthGrants.user_id, userId), eq(oauthGrants.client_id, transaction.client_id)));
  return Boolean(grant && transaction.scopes.every((scope) => grant.scopes.includes(scope)));
}

/**
 * The user allowed it: the grant is recorded (widened to these scopes) and a single-use code
 * bound to the client, redirect URI and PKCE challenge goes to the redirect URI.
 */
export async function approve(
  ctx: ServiceContext,
  app: AppRecord,
  transaction: AuthorizationTransaction,
  issuer: string,
): Promise<string> {
  const userId = transaction.user_id;
  if (!userId) throw new AuthorizationPageError("Sign in first.");
  const code = randomSecret("oac_");
  const now = ctx.clock.now();
  await audited(
    ctx,
    async (tx) => {
      const [existing] = await tx
        .select()
        .from(oauthGrants)
        .where(
          and(eq(oauthGrants.user_id, userId), eq(oauthGrants.client_id, transaction.client_id)),
        );
      const scopes = [...new Set([...(existing?.scopes ?? []), ...transaction.scopes])];
      if (existing) {
        await tx
          .update(oauthGrants)
          .set({ scopes, updated_at: now })
          .where(eq(oauthGrants.id, existing.id));
      } else {
        await tx.insert(oauthGrants).values({
          id: newId("grt"),
          app_id: app.id,
          user_id: userId,
          client_id: transaction.client_id,
          scopes,
          created_at: now,
          updated_at: now,
        });
      }
      await tx.insert(oauthCodes).values({
        code_hash: await sha256Hex(code),
        app_id: app.id,
        client_id: transaction.client_id,
        user_id: userId,
        redirect_uri: transaction.redirect_uri,
        code_challenge: transaction.code_challenge,
        scopes: transaction.scopes,
        nonce: transaction.nonce ?? null,
        auth_time: new Date((transaction.auth_time ?? now.getTime() / 1000) * 1000),
        expires_at: new Date(now.getTime() + CODE_TTL_MS),
        created_at: now,
      });
    },
    {
      appId: app.id,
      action: "oauth.authorized",
      actor: { type: "user", id: userId },
      target: { type: "oauth_client", id: transaction.client_id },
      metadata: { scopes: transaction.scopes },
    },
  );
  const url = new URL(transaction.redirect_uri);
  url.searchParams.set("code", code);
  if (transaction.state) url.searchParams.set("state", transaction.state);
  url.searchParams.set("iss", issuer);
  return url.toString();
}

const invalidCode = () =>
  new ApiError("invalid_grant", "The code is invalid, expired, used, or not for this client");

/**
 * `grant_type=authorization_code`: the client (authenticated as its type requires) exchanges a
 * code once, with the redirect URI and the PKCE verifier it was issued for. A code presented a
 * second time ends the session the first exchange opened (RFC 6749 §4.1.2). With `openid` the
 * answer carries an ID token.
 */
export async function exchangeCode(
  ctx: ServiceContext,
  deps: TokenDeps & { revocations: RevocationStore },
  app: AppRecord,
  input: {
    code: string;
    redirectUri: string;
    codeVerifier: string;
    clientId: string;
    clientSecret?: string | undefined;
    issuer: string;
  },
): Promise<TokenResponse> {
  const now = ctx.clock.now();
  const client = await authenticateClient(ctx.db, app, input, now);
  const codeHash = await sha256Hex(input.code);
  const [claimed] = await ctx.db
    .update(oauthCodes)
    .set({ used_at: now })
    .where(and(eq(oauthCodes.code_hash, codeHash), isNull(oauthCodes.used_at)))
    .returning();
  if (!claimed) {
    const [replayed] = await ctx.db
      .select()
      .from(oauthCodes)
      .where(eq(oauthCodes.code_hash, codeHash));
    if (replayed?.session_id && replayed.client_id === client.id) {
      await endSession(
        ctx.db,
        deps.revocations,
        replayed.session_id,
        "authorization_code_reuse",
        now,
      );
      await recordAudit(
        ctx.db,
        ctx.audit,
        {
          appId: app.id,
          action: "oauth.code_reused",
          actor: { type: "anonymous", id: null },
          target: { type: "session", id: replayed.session_id },
        },
        now,
      );
    }
    throw invalidCode();
  }
  const verifierMatches =
    PKCE_VERIFIER.test(input.codeVerifier) &&
    base64url.encode(
      new Uint8Array(
        await crypto.subtle.digest("SHA-256", new TextEncoder().encode(input.codeVerifier)),
      ),
    ) === claimed.code_challenge;
  if (
    claimed.app_id !== app.id ||
    claimed.client_id !== client.id ||
    claimed.expires_at <= now ||
    claimed.redirect_uri !== input.redirectUri ||
    !verifierMatches
  ) {
    throw invalidCode();
  }
  const [user] = await ctx.db.select().from(users).where(eq(users.id, claimed.user_id));
  if (!user || !(await maySignIn(ctx.db, user, now))) {
    throw new ApiError("invalid_grant", "The user cannot sign in");
  }
  const grant = { clientId: client.id, scopes: claimed.scopes };
  const session = await audited(
    ctx,
    async (tx, at) => {
      const opened = await openSession(tx, ctx, app, user.id, at, grant);
      await tx
        .update(oauthCodes)
        .set({ session_id: opened.sessionId })
        .where(eq(oauthCodes.code_hash, codeHash));
      return opened;
    },
    (opened) => ({
      appId: app.id,
      action: "auth.login.succeeded",
      actor: { type: "user", id: user.id },
      target: { type: "session", id: opened.sessionId },
      metadata: { grant_type: "authorization_code", client_id: client.id },
    }),
  );
  const tokens = await tokensFor(ctx, app, user, session, input.issuer);
  if (!claimed.scopes.includes("openid")) return tokens;
  const idToken = await signIdToken(ctx, deps, app, user, {
    issuer: input.issuer,
    clientId: client.id,
    scopes: claimed.scopes,
    nonce: claimed.nonce,
    authTime: claimed.auth_time,
  });
  return { ...tokens, id_token: idToken };
}

/** An OpenID Connect ID token, signed with the app's key (verifiable through its JWKS). */
async function signIdToken(
  ctx: ServiceContext,
  deps: Pick<TokenDeps, "keys">,
  app: AppRecord,
  user: UserRecord,
  input: {
    issuer: string;
    clientId: string;
    scopes: string[];
    nonce: string | null;
    authTime: Date;
  },
) {
  const settings = settingsOf(app);
  const key = await deps.keys.signingKey(ctx.db, app.id, settings.signing_algorithm);
  const iat = Math.floor(ctx.clock.now().getTime() / 1000);
  return new SignJWT({
    ...(input.nonce ? { nonce: input.nonce } : {}),
    auth_time: Math.floor(input.authTime.getTime() / 1000),
    ...userClaims(user, input.scopes),
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .setIssuer(input.issuer)
    .setSubject(user.id)
    .setAudience(input.clientId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + settings.access_token_ttl)
    .sign(key.privateKey);
}

/** The claims the `email` and `profile` scopes release. */
export function userClaims(
  user: Pick<UserRecord, "email" | "display_name" | "updated_at">,
  scopes: readonly string[],
) {
  return {
    ...(scopes.includes("email") ? { email: user.email } : {}),
    ...(scopes.includes("profile")
      ? {
          ...(user.display_name ? { name: user.display_name } : {}),
          updated_at: Math.floor(user.updated_at.getTime() / 1000),
        }
      : {}),
  };
}

/** The clients a user has allowed, and what. */
export async function listGrants(ctx: Pick<ServiceContext, "db">, userId: string) {
  return ctx.db
    .select({
      id: oauthGrants.id,
      client_id: oauthGrants.client_id,
      client_name: oauthClients.name,
      scopes: oauthGrants.scopes,
      created_at: oauthGrants.created_at,
      updated_at: oauthGrants.updated_at,
    })
    .from(oauthGrants)
    .innerJoin(oauthClients, eq(oauthClients.id, oauthGrants.client_id))
    .where(eq(oauthGrants.user_id, userId))
    .orderBy(asc(oauthGrants.created_at));
}

/** Withdraws a grant: the client's sessions for the user end, and their tokens stop working. */
export async function revokeGrant(
  ctx: ServiceContext,
  revocations: RevocationStore,
  app: AppRecord,
  userId: string,
  grantId: string,
) {
  const [grant] = await ctx.db
    .select()
    .from(oauthGrants)
    .where(and(eq(oauthGrants.id, grantId), eq(oauthGrants.user_id, userId)));
  if (!grant) throw new ApiError("not_found", "No such grant");
  const now = ctx.clock.now();
  const open = await ctx.db
    .select({ id: sessions.id })
    .from(sessions)
    .where(
      and(
        eq(sessions.user_id, userId),
        eq(sessions.client_id, grant.client_id),
        isNull(sessions.revoked_at),
      ),
    );
  for (const session of open)
    await endSession(ctx.db, revocations, session.id, "grant_revoked", now);
  await audited(ctx, (tx) => tx.delete(oauthGrants).where(eq(oauthGrants.id, grant.id)), {
    appId: app.id,
    action: "oauth.grant_revoked",
    actor: { type: "user", id: userId },
    target: { type: "oauth_client", id: grant.client_id },
    metadata: { sessions: open.length },
  });
}
