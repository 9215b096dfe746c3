import { and, eq } from "drizzle-orm";
import { userIdentities, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import type { AppRecord } from "./apps";
import { recordAudit, recordAuditIn } from "./audit";
import type { ServiceContext } from "./context";
import type { PlatformRecord } from "./platforms";
import { platformMessages } from "./platforms.messages";
import { signInRefusal } from "./sign-in-rules";
import { findUserByEmail, type UserRecord } from "./users";

const stringClaim = (claims: Record<string, unknown>, name: string) => {
  const value = claims[name];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
};

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+$/;

export type ProviderProfile = ReturnType<typeof profileOf>;

/** Who the provider says the user is, through the platform's claim mapping. */
export function profileOf(
  platform: PlatformRecord,
  subject: string,
  claims: Record<string, unknown>,
) {
  const email = stringClaim(claims, platform.claim_mapping.email ?? "email");
  return {
    subject,
    email: email && email.length <= 254 && EMAIL_SHAPE.test(email) ? email : undefined,
    // Only a boolean `true`: a provider that does not vouch for the address links nobody by it.
    emailVerified: claims.email_verified === true,
    name: stringClaim(claims, platform.claim_mapping.name ?? "name")?.slice(0, 200),
  };
}

export type Resolution =
  | { kind: "linked"; user: UserRecord }
  | { kind: "by_email"; user: UserRecord }
  | { kind: "signed_in"; user: UserRecord }
  | { kind: "new" };

/** A refused platform sign-in, audited against the account it concerns, if any. */
export function auditLoginFailure(
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  reason: string,
  who: { actorId: string | null; target: Pick<UserRecord, "id"> | undefined },
  now: Date,
) {
  return recordAudit(
    ctx,
    {
      appId: app.id,
      action: "auth.login.failed",
      actor: { type: "anonymous", id: who.actorId },
      ...(who.target ? { target: { type: "user", id: who.target.id } } : {}),
      metadata: { reason, platform: platform.name },
    },
    now,
  );
}

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
export async function resolveUser(
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  profile: ProviderProfile,
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
    throw new ApiError("conflict", platformMessages.linkedToAnotherUser);
  }
  if (linked) return { kind: "linked", user: linked.user };
  if (linkUserId) {
    const [user] = await ctx.db
      .select()
      .from(users)
      .where(and(eq(users.app_id, app.id), eq(users.id, linkUserId)));
    if (!user) throw new ApiError("forbidden", platformMessages.userMayNotSignIn);
    return { kind: "signed_in", user };
  }
  if (!profile.email) {
    throw new ApiError(
      "unprocessable",
      platformMessages.noUsableEmail(platform.claim_mapping.email ?? "email"),
    );
  }
  const existing = await findUserByEmail(ctx.db, app.id, profile.email);
  const refuse = (reason: string) =>
    auditLoginFailure(
      ctx,
      app,
      platform,
      reason,
      { actorId: null, target: existing },
      ctx.clock.now(),
    );
  if (!profile.emailVerified) {
    await refuse("email_unverified");
    throw new ApiError("forbidden", platformMessages.emailUnverified);
  }
  if (existing && !platform.trusted) {
    await refuse("link_required");
    throw new ApiError("conflict", platformMessages.linkRequired(platform.name));
  }
  return existing ? { kind: "by_email", user: existing } : { kind: "new" };
}

/** A deactivated or banned user is refused (403), audited like a refused password sign-in. */
export async function assertUserMaySignIn(
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  user: UserRecord,
) {
  const now = ctx.clock.now();
  const reason = await signInRefusal(ctx.db, user, now);
  if (!reason) return;
  await auditLoginFailure(ctx, app, platform, reason, { actorId: user.id, target: user }, now);
  throw new ApiError("forbidden", platformMessages.userMayNotSignIn);
}

/** The user a first sign-in at a platform creates (no password), audited, in `tx`. */
export async function createPlatformUser(
  tx: Database,
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  profile: ProviderProfile,
  at: Date,
): Promise<UserRecord> {
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
  if (!created) throw new ApiError("conflict", platformMessages.emailTaken);
  await recordAuditIn(
    tx,
    ctx.audit,
    {
      appId: app.id,
      action: "user.created",
      actor: { type: "user", id: created.id },
      target: { type: "user", id: created.id },
      metadata: { roles: [], platform: platform.name },
    },
    at,
  );
  return created;
}

const linkedVia = { new: "new_user", signed_in: "signed_in", by_email: "verified_email" } as const;

/** Links the provider account to the user, audited, in `tx`; never relinks one linked meanwhile. */
export async function linkIdentity(
  tx: Database,
  ctx: ServiceContext,
  app: AppRecord,
  platform: PlatformRecord,
  profile: ProviderProfile,
  user: UserRecord,
  kind: keyof typeof linkedVia,
  at: Date,
) {
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
  if (!inserted) throw new ApiError("conflict", platformMessages.linkedMeanwhile);
  await recordAuditIn(
    tx,
    ctx.audit,
    {
      appId: app.id,
      action: "identity.linked",
      actor: { type: "user", id: user.id },
      target: { type: "user", id: user.id },
      metadata: { platform: platform.name, platform_id: platform.id, via: linkedVia[kind] },
    },
    at,
  );
}
