import { and, asc, eq, isNull } from "drizzle-orm";
import { oauthClients, oauthCodes, oauthGrants, sessions } from "../db/schema";
import { randomSecret, sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { isSafeRedirectUri } from "../lib/redirect-uris";
import { type AppRecord, appArchivedMessage } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { oauthMessages } from "./oauth.messages";
import type { OAuthClientRecord } from "./oauth-clients";
import { endSession } from "./session-lifecycle";

const CODE_TTL_MS = 60_000;
/** How long the login and consent pages may take, end to end. */
const TRANSACTION_TTL_MS = 10 * 60_000;
const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43,128}$/;

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
    throw new AuthorizationPageError(oauthMessages.redirectUriNotRegistered);
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
  if (!client) throw new AuthorizationPageError(oauthMessages.unknownClient);
  const redirectUri = assertRedirectable(client, query.redirect_uri);
  const base = { redirect_uri: redirectUri, state: query.state?.slice(0, 1024) };
  const refuse = (error: string, description: string) =>
    errorRedirect(base, issuer, error, description);
  if (query.response_type !== "code") {
    throw refuse("unsupported_response_type", oauthMessages.onlyCodeResponseType);
  }
  if (query.code_challenge_method !== "S256" || !PKCE_CHALLENGE.test(query.code_challenge ?? "")) {
    throw refuse("invalid_request", oauthMessages.pkceRequired);
  }
  const scopes = [...new Set((query.scope ?? "").split(" ").filter(Boolean))];
  const unknown = scopes.filter((scope) => !client.scopes.includes(scope));
  if (scopes.length === 0 || unknown.length > 0) {
    throw refuse(
      "invalid_scope",
      scopes.length === 0 ? oauthMessages.scopeRequired : oauthMessages.scopesNotAllowed(unknown),
    );
  }
  if (app.status !== "active") throw refuse("access_denied", appArchivedMessage);
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
export async function spendTransaction(ctx: ServiceContext, transaction: AuthorizationTransaction) {
  if (!(await ctx.revocations.spend(transaction.id, new Date(transaction.expires_at)))) {
    throw new AuthorizationPageError(oauthMessages.answeredAlready);
  }
}

export const sealTransaction = (ctx: ServiceContext, transaction: AuthorizationTransaction) =>
  ctx.sealer.encrypt(JSON.stringify(transaction));

/** The transaction a page posted back; tampered or expired ones are refused. */
export async function openTransaction(
  ctx: ServiceContext,
  sealed: string | undefined,
): Promise<AuthorizationTransaction> {
  let transaction: AuthorizationTransaction;
  try {
    transaction = JSON.parse(await ctx.sealer.decrypt(sealed ?? ""));
  } catch {
    throw new AuthorizationPageError(oauthMessages.formInvalid);
  }
  if (typeof transaction.id !== "string" || transaction.id === "") {
    throw new AuthorizationPageError(oauthMessages.formInvalid);
  }
  if (transaction.expires_at < ctx.clock.now().getTime()) {
    throw new AuthorizationPageError(oauthMessages.tookTooLong);
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
  if (!userId) throw new AuthorizationPageError(oauthMessages.signInFirst);
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

/** The clients a user has allowed, and what. */
export async function listGrants(ctx: ServiceContext, userId: string) {
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
  app: AppRecord,
  userId: string,
  grantId: string,
) {
  const [grant] = await ctx.db
    .select()
    .from(oauthGrants)
    .where(and(eq(oauthGrants.id, grantId), eq(oauthGrants.user_id, userId)));
  if (!grant) throw new ApiError("not_found", oauthMessages.noSuchGrant);
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
  for (const session of open) await endSession(ctx, session.id, "grant_revoked", now);
  await audited(ctx, (tx) => tx.delete(oauthGrants).where(eq(oauthGrants.id, grant.id)), {
    appId: app.id,
    action: "oauth.grant_revoked",
    actor: { type: "user", id: userId },
    target: { type: "oauth_client", id: grant.client_id },
    metadata: { sessions: open.length },
  });
}
