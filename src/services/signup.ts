import { and, eq, gt, isNull, lt, sql } from "drizzle-orm";
import { invites, roles, userRoles, users } from "../db/schema";
import { sha256Hex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import { accountPageUrl } from "./account-links";
import { issueAccountToken } from "./account-tokens";
import { type AppRecord, assertAppActive, settingsOf } from "./apps";
import { audited, recordAuditIn } from "./audit";
import type { ServiceContext } from "./context";
import { mayMail, queueEmail } from "./email";
import { INVITE_TOKEN_PREFIX } from "./invites";
import { mailResetLink } from "./password-recovery";
import { openSession, tokensFor } from "./session-tokens";
import { signupMessages } from "./signup.messages";
import { checkPassword, findUserByEmail, type UserRecord } from "./users";

export interface SignUpInput {
  email: string;
  password: string;
  display_name?: string | undefined;
  invite_token?: string | undefined;
}

/** Thrown inside a transaction to roll back work done only so both answers take as long. */
class Rehearsal extends Error {}

/**
 * Runs `work` in a transaction (a savepoint when `db` is one already) and rolls it back: the
 * same statements as the real thing, nothing kept.
 */
async function rehearse(db: Database, work: (tx: Database) => Promise<unknown>) {
  try {
    await db.transaction(async (tx) => {
      await work(tx);
      throw new Rehearsal();
    });
  } catch (error) {
    if (!(error instanceof Rehearsal)) throw error;
  }
}

/** Mail work that really happens when the address may get mail, and is only rehearsed if not. */
async function mailOrRehearse(
  tx: Database,
  allowed: boolean,
  work: (tx: Database) => Promise<string>,
) {
  if (allowed) return [await work(tx)];
  await rehearse(tx, work);
  return [];
}

/** A user that exists only inside a rehearsal. */
const standIn = (app: AppRecord, tx: Database, now: Date) =>
  insertUser(
    tx,
    app,
    { email: `${newId("usr")}@invalid`, password: "", passwordHash: "", roleId: null },
    now,
    false,
  );

/** The role a self-registered user without an invite gets: the app's `signup_default_role`. */
async function signupRoleId(ctx: ServiceContext, app: AppRecord) {
  const name = settingsOf(app).signup_default_role;
  if (!name) return null;
  const [role] = await ctx.db
    .select({ id: roles.id })
    .from(roles)
    .where(and(eq(roles.app_id, app.id), eq(roles.name, name)));
  return role?.id ?? null;
}

/**
 * The pending invite of this app whose token was given and whose email is the one signing up;
 * guesses count towards the caller's IP lockout, as accepting an invite does.
 */
async function pendingInvite(ctx: ServiceContext, app: AppRecord, email: string, token?: string) {
  const attemptKeys = ctx.audit.ipAddress ? [`ip:${ctx.audit.ipAddress}`] : [];
  await ctx.bruteForce.assertNotLocked(attemptKeys);
  const [invite] = token?.startsWith(INVITE_TOKEN_PREFIX)
    ? await ctx.db
        .select()
        .from(invites)
        .where(and(eq(invites.token_hash, await sha256Hex(token)), eq(invites.app_id, app.id)))
    : [];
  const usable =
    invite &&
    !invite.revoked_at &&
    invite.expires_at > ctx.clock.now() &&
    invite.uses < invite.max_uses &&
    invite.email.toLowerCase() === email.toLowerCase();
  if (!usable) {
    if (token) await ctx.bruteForce.recordFailure(attemptKeys);
    throw new ApiError("forbidden", signupMessages.inviteRequired);
  }
  return invite;
}

/** Whether the app lets this address sign up (its policy and domain allow-list); 403/400 if not. */
async function assertMaySignUp(ctx: ServiceContext, app: AppRecord, input: SignUpInput) {
  assertAppActive(app, "forbidden");
  const settings = settingsOf(app);
  if (settings.signup === "closed") throw new ApiError("forbidden", signupMessages.closed);
  const domain = input.email.slice(input.email.lastIndexOf("@") + 1).toLowerCase();
  const domains = settings.signup_email_domains;
  if (domains.length > 0 && !domains.includes(domain)) {
    throw new ApiError("validation_error", signupMessages.domainNotAllowed, {
      details: [{ field: "json.email", reason: `not at ${domains.join(", ")}` }],
    });
  }
  await checkPassword(ctx, app, input.password);
  return settings.signup === "invite_only"
    ? pendingInvite(ctx, app, input.email, input.invite_token)
    : undefined;
}

/** Claims one use of the invite in `tx`; a failure later in the transaction gives it back. */
async function claimInvite(tx: Database, inviteId: string, now: Date) {
  const [claimed] = await tx
    .update(invites)
    .set({ uses: sql`${invites.uses} + 1` })
    .where(
      and(
        eq(invites.id, inviteId),
        isNull(invites.revoked_at),
        gt(invites.expires_at, now),
        lt(invites.uses, invites.max_uses),
      ),
    )
    .returning();
  if (!claimed) throw new ApiError("forbidden", signupMessages.inviteRequired);
  return claimed;
}

/** Inserts the user (unverified) with their role, or answers undefined when the email is taken. */
async function insertUser(
  tx: Database,
  app: AppRecord,
  input: SignUpInput & { passwordHash: string; roleId: string | null },
  now: Date,
  signedIn: boolean,
) {
  const [created] = await tx
    .insert(users)
    .values({
      id: newId("usr"),
      app_id: app.id,
      email: input.email,
      display_name: input.display_name ?? null,
      password_hash: input.passwordHash,
      created_at: now,
      updated_at: now,
      last_login_at: signedIn ? now : null,
    })
    .onConflictDoNothing()
    .returning();
  if (created && input.roleId) {
    await tx
      .insert(userRoles)
      .values({ user_id: created.id, role_id: input.roleId, created_at: now });
  }
  return created;
}

/**
 * Issues an email-verification link for the user and queues its mail in `tx`, audited as
 * `email.verification_sent`; answers the outbox id.
 */
async function queueVerification(
  tx: Database,
  ctx: ServiceContext,
  app: AppRecord,
  user: Pick<UserRecord, "id" | "email">,
  base: string,
  now: Date,
) {
  const { token, minutes } = await issueAccountToken(
    tx,
    app,
    { userId: user.id, purpose: "email_verification", email: user.email },
    now,
  );
  const id = await queueEmail(
    tx,
    app,
    {
      kind: "email_verification",
      to: user.email,
      variables: {
        email: user.email,
        link: accountPageUrl(base, app, "verify-email", token),
        minutes,
      },
    },
    now,
  );
  await recordAuditIn(
    tx,
    ctx.audit,
    {
      appId: app.id,
      action: "email.verification_sent",
      actor: { type: "user", id: user.id },
      target: { type: "user", id: user.id },
    },
    now,
  );
  return id;
}

/** `user.signed_up`: the event of a new account. */
function signedUpEvent(app: AppRecord, user: UserRecord, inviteId: string | undefined) {
  return {
    appId: app.id,
    action: "user.signed_up",
    actor: { type: "user" as const, id: user.id },
    target: { type: "user", id: user.id },
    metadata: { email: user.email, ...(inviteId ? { invite_id: inviteId } : {}) },
  };
}

export type SignUpResult =
  | {
      status: "signed_in";
      app: AppRecord;
      user: UserRecord;
      tokens: Awaited<ReturnType<typeof tokensFor>>;
      mail: string[];
    }
  | { status: "verification_sent"; mail: string[] };

/**
 * Self-service sign-up under the app's policy. When the app requires a verified email the answer
 * is the same whether or not the address has an account (no enumeration): a new address gets an
 * unverified user and a verification mail, a taken one an `account_exists` mail to its owner,
 * with the same password hashing and a transaction of the same shape. Otherwise the user is
 * signed in at once (and a taken address is a 409).
 */
export async function signUp(
  ctx: ServiceContext,
  app: AppRecord,
  input: SignUpInput,
  links: { base: string; issuer: string },
): Promise<SignUpResult> {
  const invite = await assertMaySignUp(ctx, app, input);
  const verify = settingsOf(app).require_email_verification;
  const existing = await findUserByEmail(ctx.db, app.id, input.email);
  const passwordHash = await ctx.passwords.hash(input.password);
  const roleId = invite ? invite.role_id : await signupRoleId(ctx, app);
  if (!verify && existing) throw new ApiError("conflict", signupMessages.emailTaken);
  const mailAllowed = await mayMail(ctx, app, input.email);

  if (verify && existing) {
    const mail = await accountExists(ctx, app, existing, links.base, mailAllowed);
    return { status: "verification_sent", mail };
  }
  const created = await audited(
    ctx,
    async (tx, now) => {
      if (invite) await claimInvite(tx, invite.id, now);
      const user = await insertUser(tx, app, { ...input, passwordHash, roleId }, now, !verify);
      if (!user) throw new ApiError("conflict", signupMessages.emailTaken);
      const mail = await mailOrRehearse(tx, mailAllowed, (mailTx) =>
        queueVerification(mailTx, ctx, app, user, links.base, now),
      );
      const session = verify ? undefined : await openSession(tx, ctx, app, user.id, now);
      return { user, mail, session };
    },
    (result) => signedUpEvent(app, result.user, invite?.id),
  );
  if (verify || !created.session) return { status: "verification_sent", mail: created.mail };
  return {
    status: "signed_in",
    app,
    user: created.user,
    tokens: await tokensFor(ctx, app, created.user, created.session, links.issuer),
    mail: created.mail,
  };
}

/**
 * The sign-up of a taken address: its owner is told, with a reset link, and the same kind of
 * transaction runs as for a new account (a token issued, a mail queued, an event recorded).
 */
async function accountExists(
  ctx: ServiceContext,
  app: AppRecord,
  owner: UserRecord,
  base: string,
  mailAllowed: boolean,
) {
  return audited(
    ctx,
    async (tx, now) => {
      await rehearse(tx, (inner) => standIn(app, inner, now));
      return mailOrRehearse(tx, mailAllowed, (mailTx) =>
        mailResetLink(mailTx, app, owner, { kind: "account_exists", base }, now),
      );
    },
    {
      appId: app.id,
      action: "user.signup_refused",
      actor: { type: "anonymous", id: null },
      target: { type: "user", id: owner.id },
      metadata: { reason: "email_taken" },
    },
  );
}

/**
 * Sends a new verification link when the address belongs to an unverified user of the app; the
 * answer and the work are the same otherwise (the mail's transaction is rolled back).
 */
export async function resendVerification(
  ctx: ServiceContext,
  app: AppRecord,
  email: string,
  base: string,
): Promise<string[]> {
  assertAppActive(app, "forbidden");
  const user = await findUserByEmail(ctx.db, app.id, email);
  const mailAllowed = await mayMail(ctx, app, email);
  if (user && !user.email_verified_at && user.status === "active" && mailAllowed) {
    return [
      await ctx.db.transaction((tx) =>
        queueVerification(tx, ctx, app, user, base, ctx.clock.now()),
      ),
    ];
  }
  // Unknown or verified address: the same statements, for a user that exists only in them.
  const now = ctx.clock.now();
  await rehearse(ctx.db, async (tx) => {
    const stand = await standIn(app, tx, now);
    if (stand) await queueVerification(tx, ctx, app, stand, base, now);
  });
  return [];
}
