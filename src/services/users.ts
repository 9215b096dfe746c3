import { and, asc, eq, exists, inArray, isNull, type Placeholder, sql } from "drizzle-orm";
import { pageOf } from "../db/page";
import { preparedPerDatabase } from "../db/prepared";
import { bans, roles, sessions, userRoles, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import { type AppRecord, revocationHorizon, settingsOf } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { activeAt } from "./ip-ban-list";
import { assertMayGrant } from "./permissions";
import { passwordProblems } from "./settings";

export type UserRecord = typeof users.$inferSelect;
export type UserView = Omit<
  UserRecord,
  "password_hash" | "totp_secret_encrypted" | "totp_enabled_at" | "totp_last_step"
> & { roles: string[]; mfa_enabled: boolean; email_verified: boolean };

/** A user as the API shows it: no secrets, whether 2FA is on and the email verified. */
function view(user: UserRecord, roleNames: string[]): UserView {
  const {
    password_hash: _hash,
    totp_secret_encrypted: _secret,
    totp_enabled_at,
    totp_last_step: _step,
    ...fields
  } = user;
  return {
    ...fields,
    roles: roleNames,
    mfa_enabled: totp_enabled_at !== null,
    email_verified: fields.email_verified_at !== null,
  };
}

/** Role names per user, one query for the whole page (no N+1). */
async function roleNamesOf(db: Database, userIds: string[]): Promise<Map<string, string[]>> {
  const byUser = new Map<string, string[]>(userIds.map((id) => [id, []]));
  if (userIds.length === 0) return byUser;
  const rows = await db
    .select({ userId: userRoles.user_id, name: roles.name })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.role_id))
    .where(inArray(userRoles.user_id, userIds))
    .orderBy(asc(roles.name));
  for (const row of rows) byUser.get(row.userId)?.push(row.name);
  return byUser;
}

/** The roles and the union of their permissions, as a token carries them. */
export async function grantsOf(db: Database, userId: string) {
  const rows = await db
    .select({ name: roles.name, permissions: roles.permissions })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.role_id))
    .where(eq(userRoles.user_id, userId))
    .orderBy(asc(roles.name));
  return grantsFrom(rows);
}

export type Grants = ReturnType<typeof grantsFrom>;

/** A user's role names and the union of their permissions, from their roles in name order. */
export function grantsFrom(rows: ReadonlyArray<{ name: string; permissions: string[] }>) {
  return {
    roles: rows.map((row) => row.name),
    permissions: [...new Set(rows.flatMap((row) => row.permissions))].sort(),
  };
}

/**
 * The roles of the user a statement reads (`users.id`), as one JSON column: a statement that
 * reads a user reads their grants with it. {@link grantsOfRoles} reads the column.
 */
export const rolesOfUser = (db: Database) =>
  sql<Array<{ name: string; permissions: string[] }> | string>`(${db
    .select({
      roles: sql`coalesce(
        json_agg(json_build_object('name', ${roles.name}, 'permissions', ${roles.permissions})
          order by ${roles.name}),
        '[]'::json)`,
    })
    .from(userRoles)
    .innerJoin(roles, eq(roles.id, userRoles.role_id))
    .where(eq(userRoles.user_id, users.id))})`;

/** Whether the user a statement reads (`users.id`) is banned at `now`, as a column. */
export const bannedAt = (db: Database, now: Placeholder) =>
  sql<boolean>`${exists(
    db
      .select({ id: bans.id })
      .from(bans)
      .where(and(eq(bans.kind, "user"), eq(bans.user_id, users.id), activeAt(now))),
  )}`;

/** The grants of a {@link rolesOfUser} column (JSON text on drivers that do not parse it). */
export const grantsOfRoles = (held: Array<{ name: string; permissions: string[] }> | string) =>
  grantsFrom(typeof held === "string" ? JSON.parse(held) : held);

export async function findUser(
  ctx: ServiceContext,
  appId: string,
  userId: string,
): Promise<UserView> {
  const [user] = await ctx.db
    .select()
    .from(users)
    .where(and(eq(users.app_id, appId), eq(users.id, userId)));
  if (!user) throw new ApiError("not_found", "No such user in this app");
  return view(user, (await roleNamesOf(ctx.db, [user.id])).get(user.id) ?? []);
}

/** An app's user by email: addresses match whatever their case. */
const ofAppByEmail = (appId: string | Placeholder, email: string | Placeholder) =>
  and(eq(users.app_id, appId), sql`lower(${users.email}) = lower(${email})`);

export async function findUserByEmail(db: Database, appId: string, email: string) {
  const [user] = await db.select().from(users).where(ofAppByEmail(appId, email));
  return user;
}

/**
 * The user of an email as a password sign-in reads them, with what it decides on in the same
 * statement: whether they are banned at `now`, and their grants for the access token.
 */
export async function findUserToSignIn(db: Database, appId: string, email: string, now: Date) {
  const [row] = await signInLookup(db).execute({ appId, email, now: now.toISOString() });
  if (!row) return undefined;
  const { roles: held, ...found } = row;
  return { ...found, grants: grantsOfRoles(held) };
}

/** The statement of {@link findUserToSignIn}: building it cost more than running it. */
const signInLookup = preparedPerDatabase((db) =>
  db
    .select({
      user: users,
      banned: bannedAt(db, sql.placeholder("now")),
      roles: rolesOfUser(db),
    })
    .from(users)
    .where(ofAppByEmail(sql.placeholder("appId"), sql.placeholder("email")))
    .prepare("user_to_sign_in"),
);

export async function listUsers(
  ctx: ServiceContext,
  appId: string,
  page: { limit: number; offset: number },
  filter: { status?: UserRecord["status"] | undefined; email?: string | undefined },
) {
  const conditions = [eq(users.app_id, appId)];
  if (filter.status) conditions.push(eq(users.status, filter.status));
  if (filter.email) conditions.push(sql`lower(${users.email}) = lower(${filter.email})`);
  const where = and(...conditions);
  const { rows, total } = await pageOf(ctx.db, users, { where, order: [asc(users.id)], page });
  const names = await roleNamesOf(
    ctx.db,
    rows.map((row) => row.id),
  );
  return { data: rows.map((row) => view(row, names.get(row.id) ?? [])), total };
}

/** 400 with the reasons when a password does not meet the app's policy. */
/**
 * Refuses a password the app's policy does not allow (length, character classes, and, where the
 * app asks, presence in breached-password corpora), naming `field` in the details.
 */
export async function checkPassword(
  ctx: Pick<ServiceContext, "breachedPasswords">,
  app: AppRecord,
  password: string,
  field = "json.password",
) {
  const policy = settingsOf(app).password_policy;
  const problems = passwordProblems(password, policy);
  if (problems.length === 0 && policy.check_breached) {
    if (await ctx.breachedPasswords.isBreached(password)) {
      problems.push("appears in a known data breach; choose another");
    }
  }
  if (problems.length > 0) {
    throw new ApiError("validation_error", "The password does not meet the app's policy", {
      details: problems.map((reason) => ({ field, reason })),
    });
  }
}

async function rolesByName(db: Database, appId: string, names: string[]) {
  if (names.length === 0) return [];
  const found = await db
    .select()
    .from(roles)
    .where(and(eq(roles.app_id, appId), inArray(roles.name, names)));
  const missing = names.filter((name) => !found.some((role) => role.name === name));
  if (missing.length > 0) {
    throw new ApiError("validation_error", "Unknown role", {
      details: missing.map((name) => ({ field: "json.role", reason: `no role named ${name}` })),
    });
  }
  return found;
}

async function assertEmailFree(db: Database, appId: string, email: string, exceptUserId?: string) {
  const existing = await findUserByEmail(db, appId, email);
  if (existing && existing.id !== exceptUserId) {
    throw new ApiError("conflict", "A user with this email exists in this app already");
  }
}

export async function createUser(
  ctx: ServiceContext,
  app: AppRecord,
  input: {
    email: string;
    password: string;
    display_name?: string | undefined;
    role?: string | undefined;
    roles?: string[] | undefined;
    metadata?: Record<string, unknown> | undefined;
  },
): Promise<UserView> {
  await checkPassword(ctx, app, input.password);
  const roleNames = [...new Set([...(input.role ? [input.role] : []), ...(input.roles ?? [])])];
  const assigned = await rolesByName(ctx.db, app.id, roleNames);
  assertMayGrant(
    ctx.grantor,
    assigned.flatMap((role) => role.permissions),
    "json.roles",
  );
  await assertEmailFree(ctx.db, app.id, input.email);
  const passwordHash = await ctx.passwords.hash(input.password);
  const user = await audited(
    ctx,
    async (tx, now) => {
      const [row] = await tx
        .insert(users)
        .values({
          id: newId("usr"),
          app_id: app.id,
          email: input.email,
          display_name: input.display_name ?? null,
          password_hash: passwordHash,
          metadata: input.metadata ?? {},
          created_at: now,
          updated_at: now,
        })
        .returning();
      if (!row) throw new Error("insert returned no row");
      if (assigned.length > 0) {
        await tx
          .insert(userRoles)
          .values(assigned.map((role) => ({ user_id: row.id, role_id: role.id, created_at: now })));
      }
      return row;
    },
    (row) => ({
      appId: app.id,
      action: "user.created",
      target: { type: "user", id: row.id },
      metadata: { roles: roleNames },
    }),
  );
  return view(user, roleNames.sort());
}

/** Ends every session of a user and revokes the access tokens issued so far. */
export async function revokeUserTokens(
  ctx: ServiceContext,
  userId: string,
  now: Date,
  reason: string,
) {
  await ctx.db
    .update(sessions)
    .set({ revoked_at: now, revoked_reason: reason })
    .where(and(eq(sessions.user_id, userId), isNull(sessions.revoked_at)));
  await ctx.revocations.revokeIssuedBefore(`sub:${userId}`, now, revocationHorizon(now));
}

export async function updateUser(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  changes: {
    email?: string | undefined;
    display_name?: string | null | undefined;
    password?: string | undefined;
    status?: UserRecord["status"] | undefined;
    metadata?: Record<string, unknown> | undefined;
    email_verified?: boolean | undefined;
  },
): Promise<UserView> {
  const current = await findUser(ctx, app.id, userId);
  // Whoever sets a user's password or email can sign in as them: only a caller holding all the
  // user holds may change the account.
  assertMayGrant(ctx.grantor, (await grantsOf(ctx.db, userId)).permissions, "path.user_id");
  if (changes.password !== undefined) await checkPassword(ctx, app, changes.password);
  if (changes.email !== undefined) await assertEmailFree(ctx.db, app.id, changes.email, userId);
  const { password, email_verified, ...fields } = changes;
  const emailChanged =
    changes.email !== undefined && changes.email.toLowerCase() !== current.email.toLowerCase();
  const passwordHash = password !== undefined ? await ctx.passwords.hash(password) : undefined;
  const deactivating = changes.status === "deactivated" && current.status !== "deactivated";
  let changedAt = ctx.clock.now();
  const updated = await audited(
    ctx,
    async (tx, now) => {
      changedAt = now;
      const [row] = await tx
        .update(users)
        .set({
          ...fields,
          ...(passwordHash ? { password_hash: passwordHash } : {}),
          // A new address is unproven until someone says otherwise.
          ...(email_verified !== undefined || emailChanged
            ? { email_verified_at: email_verified ? (current.email_verified_at ?? now) : null }
            : {}),
          updated_at: now,
        })
        .where(and(eq(users.app_id, app.id), eq(users.id, userId)))
        .returning();
      if (!row) throw new ApiError("not_found", "No such user in this app");
      return row;
    },
    {
      appId: app.id,
      action: deactivating ? "user.deactivated" : "user.updated",
      target: { type: "user", id: userId },
      metadata: { fields: Object.keys(changes) },
    },
  );
  if (deactivating || passwordHash) {
    await revokeUserTokens(
      ctx,
      userId,
      changedAt,
      deactivating ? "user_deactivated" : "password_changed",
    );
  }
  return view(updated, current.roles);
}

function roleEvent(app: AppRecord, userId: string, action: string, role: string) {
  return { appId: app.id, action, target: { type: "user", id: userId }, metadata: { role } };
}

export async function assignRole(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  roleName: string,
) {
  const user = await findUser(ctx, app.id, userId);
  const [role] = await rolesByName(ctx.db, app.id, [roleName]);
  if (!role) throw new Error("unreachable: rolesByName checks existence");
  assertMayGrant(ctx.grantor, role.permissions, "json.role");
  await audited(
    ctx,
    (tx, now) =>
      tx
        .insert(userRoles)
        .values({ user_id: userId, role_id: role.id, created_at: now })
        .onConflictDoNothing(),
    roleEvent(app, userId, "role.assigned", roleName),
  );
  return { ...user, roles: [...new Set([...user.roles, roleName])].sort() };
}

export async function removeRole(
  ctx: ServiceContext,
  app: AppRecord,
  userId: string,
  roleName: string,
) {
  const user = await findUser(ctx, app.id, userId);
  if (!user.roles.includes(roleName)) {
    throw new ApiError("not_found", `The user does not hold role ${roleName}`);
  }
  const [role] = await rolesByName(ctx.db, app.id, [roleName]);
  if (!role) throw new Error("unreachable: the user holds it");
  await audited(
    ctx,
    (tx) =>
      tx
        .delete(userRoles)
        .where(and(eq(userRoles.user_id, userId), eq(userRoles.role_id, role.id))),
    roleEvent(app, userId, "role.removed", roleName),
  );
  return { ...user, roles: user.roles.filter((name) => name !== roleName) };
}
