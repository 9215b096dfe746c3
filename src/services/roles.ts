import { and, asc, eq } from "drizzle-orm";
import { pageOf } from "../db/page";
import { roles } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import type { AppRecord } from "./apps";
import { audited } from "./audit";
import type { ServiceContext } from "./context";
import { assertMayGrant } from "./permissions";

export type RoleRecord = typeof roles.$inferSelect;

export async function findRole(
  ctx: ServiceContext,
  appId: string,
  name: string,
): Promise<RoleRecord> {
  const [role] = await ctx.db
    .select()
    .from(roles)
    .where(and(eq(roles.app_id, appId), eq(roles.name, name)));
  if (!role) throw new ApiError("not_found", `No role named ${name} in this app`);
  return role;
}

export async function listRoles(
  ctx: ServiceContext,
  appId: string,
  page: { limit: number; offset: number },
) {
  const where = eq(roles.app_id, appId);
  const { rows, total } = await pageOf(ctx.db, roles, { where, order: [asc(roles.name)], page });
  return { data: rows, total };
}

export function createRole(
  ctx: ServiceContext,
  app: AppRecord,
  input: { name: string; display_name?: string | undefined; permissions: string[] },
) {
  assertMayGrant(ctx.grantor, input.permissions, "json.permissions");
  return audited(
    ctx,
    async (tx, now) => {
      const [role] = await tx
        .insert(roles)
        .values({
          id: newId("role"),
          app_id: app.id,
          name: input.name,
          display_name: input.display_name ?? input.name,
          permissions: [...new Set(input.permissions)],
          created_at: now,
          updated_at: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!role) throw new ApiError("conflict", `A role named ${input.name} exists already`);
      return role;
    },
    (role) => ({
      appId: app.id,
      action: "role.created",
      target: { type: "role", id: role.id },
      metadata: { name: role.name, permissions: role.permissions },
    }),
  );
}

export async function updateRole(
  ctx: ServiceContext,
  app: AppRecord,
  name: string,
  changes: { display_name?: string | undefined; permissions?: string[] | undefined },
) {
  const current = await findRole(ctx, app.id, name);
  if (changes.permissions) assertMayGrant(ctx.grantor, changes.permissions, "json.permissions");
  return audited(
    ctx,
    async (tx, now) => {
      const [role] = await tx
        .update(roles)
        .set({
          ...(changes.display_name !== undefined ? { display_name: changes.display_name } : {}),
          ...(changes.permissions ? { permissions: [...new Set(changes.permissions)] } : {}),
          updated_at: now,
        })
        .where(eq(roles.id, current.id))
        .returning();
      return role ?? current;
    },
    (role) => ({
      appId: app.id,
      action: "role.updated",
      target: { type: "role", id: current.id },
      metadata: { name, before: current.permissions, after: role.permissions },
    }),
  );
}

export async function deleteRole(ctx: ServiceContext, app: AppRecord, name: string) {
  const role = await findRole(ctx, app.id, name);
  await audited(ctx, (tx) => tx.delete(roles).where(eq(roles.id, role.id)), {
    appId: app.id,
    action: "role.deleted",
    target: { type: "role", id: role.id },
    metadata: { name, permissions: role.permissions },
  });
}
