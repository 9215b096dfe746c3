import { ApiError } from "../lib/errors";

/** Built-in permissions; roles may also hold custom `resource:action` strings of their own. */
export const permissionCatalogue = [
  { name: "users:read", description: "List and read users" },
  { name: "users:write", description: "Create and update users, assign roles" },
  { name: "users:delete", description: "Deactivate users" },
  { name: "roles:read", description: "List and read roles" },
  { name: "roles:write", description: "Create and update roles" },
  { name: "roles:delete", description: "Delete roles" },
  { name: "permissions:read", description: "List the permission catalogue" },
  { name: "settings:read", description: "Read the app's settings" },
  { name: "settings:write", description: "Change the app's settings" },
  { name: "audit:read", description: "Read the app's audit log" },
  { name: "keys:write", description: "Rotate the app's signing keys" },
  { name: "api-keys:read", description: "List and read API keys" },
  { name: "api-keys:write", description: "Create API keys" },
  { name: "api-keys:delete", description: "Revoke API keys" },
  { name: "credentials:write", description: "Manage service credentials (platform admin)" },
  { name: "invites:write", description: "Manage invites (platform admin)" },
  { name: "gps:read", description: "Read positions" },
  { name: "gps:write", description: "Post positions" },
  { name: "devices:read", description: "List and read devices" },
  { name: "devices:write", description: "Create and update devices" },
  { name: "devices:delete", description: "Delete devices" },
  { name: "platforms:read", description: "List and read authentication platforms" },
  { name: "platforms:write", description: "Create, update and delete authentication platforms" },
  { name: "stats:read", description: "Read the app's statistics" },
  { name: "oauth-clients:read", description: "List and read OAuth clients" },
  { name: "oauth-clients:write", description: "Create, change, rotate and delete OAuth clients" },
] as const;

/** Whether any granted permission covers the required one; `*` in a grant matches any part. */
export function hasPermission(granted: readonly string[], required: string): boolean {
  const [resource, action] = required.split(":");
  return granted.some((permission) => {
    const [grantedResource, grantedAction] = permission.split(":");
    return (
      (grantedResource === "*" || grantedResource === resource) &&
      (grantedAction === "*" || grantedAction === action)
    );
  });
}

/**
 * Whose permissions a change hands out: the platform admin's (anything), or an app caller's own
 * (a token's, a service's or an API key's permissions; none for an anonymous request).
 */
export type Grantor = { kind: "platform" } | { kind: "app"; permissions: readonly string[] };

/**
 * The rule of every change that hands out permissions (API keys, role assignment, role edits,
 * invites, service credentials, OAuth clients' scopes, and changing a user's account, which
 * hands out whatever that user holds): the caller must hold each of them
 * itself, a wildcard only through a wildcard (`gps:read` does not cover `gps:*`). 403 naming
 * the ones it does not hold; the platform admin is exempt.
 */
export function assertMayGrant(grantor: Grantor, permissions: readonly string[], field: string) {
  if (grantor.kind === "platform") return;
  const beyond = [...new Set(permissions)].filter(
    (permission) => !hasPermission(grantor.permissions, permission),
  );
  if (beyond.length > 0) {
    throw new ApiError("forbidden", "This would hand out permissions you do not hold", {
      details: beyond.map((permission) => ({
        field,
        reason: `${permission} is not among your permissions`,
      })),
    });
  }
}
