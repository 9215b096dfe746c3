import { ApiError } from "../lib/errors";
import type { TokenRevocationQuery } from "../ports";
import { type AccessClaims, subjectsOf } from "./access-tokens";
import { hasPermission } from "./permissions";

/** Who is calling: the platform admin, or a principal of one app. */
export type Subject =
  | { kind: "admin" }
  | {
      kind: "user";
      appId: string;
      userId: string;
      roles: string[];
      permissions: string[];
      claims: AccessClaims;
    }
  | {
      /** A service credential's `client_credentials` token. */
      kind: "service";
      appId: string;
      credentialId: string;
      roles: string[];
      permissions: string[];
      claims: AccessClaims;
    }
  | { kind: "api_key"; appId: string; keyId: string; roles: string[]; permissions: string[] };

export type AppSubject = Exclude<Subject, { kind: "admin" }>;

/** The id of whoever the subject is, for audit trails. */
export function subjectId(subject: Subject): string | null {
  switch (subject.kind) {
    case "admin":
      return null;
    case "user":
      return subject.userId;
    case "service":
      return subject.credentialId;
    case "api_key":
      return subject.keyId;
  }
}

/**
 * What marks the subject's credential revoked, for a stream that outlives the request's check (a
 * GraphQL subscription): a token by its `jti`, user, session and app; an API key by its id and
 * app, whose "revoked before" markers are compared with the stream's start.
 */
export function revocationOf(subject: AppSubject, streamStart: Date): TokenRevocationQuery {
  if (subject.kind === "api_key") {
    return { tokenId: subject.keyId, issuedAt: streamStart, subjects: [`app:${subject.appId}`] };
  }
  return {
    tokenId: subject.claims.jti,
    issuedAt: new Date(subject.claims.iat * 1000),
    subjects: subjectsOf(subject.claims),
  };
}

/** A token an OAuth client got for a user (authorization code): it carries the client's id. */
export function isDelegated(subject: Subject): boolean {
  return subject.kind === "user" && subject.claims.client_id !== undefined;
}

const insufficientScope = {
  "WWW-Authenticate": `Bearer realm="heimdall", error="insufficient_scope"`,
};

/**
 * The rule of an app's own routes (REST at the top level, GraphQL): a caller of the app, never
 * the platform admin, holding `permission` when one is named. A token issued to an OAuth client
 * reaches only what its scopes name, the permissions among them: what names no permission (the
 * user's own account, the app itself) is not for it.
 */
export function assertAppCaller(
  subject: Subject,
  permission?: string,
): asserts subject is AppSubject {
  if (subject.kind === "admin") {
    throw new ApiError(
      "forbidden",
      "The platform admin manages apps under /v1/apps/{app_name}/…, not here",
    );
  }
  if (permission && !hasPermission(subject.permissions, permission)) {
    throw new ApiError("forbidden", `Missing permission ${permission}`, {
      ...(isDelegated(subject) ? { headers: insufficientScope } : {}),
    });
  }
  if (!permission && isDelegated(subject)) {
    throw new ApiError(
      "forbidden",
      "An OAuth client's token reaches only what its scopes name; the account is the user's own",
      { headers: insufficientScope },
    );
  }
}
