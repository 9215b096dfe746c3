import type { IncomingMessage, ServerResponse } from "node:http";
// @ts-expect-error oidc-provider ships no type declarations (the parts used are typed below)
import { Provider } from "oidc-provider";

/**
 * The part of oidc-provider's API the platform tests and the token bench drive (the package
 * ships no types): a real OpenID provider on a loopback socket, whose login and consent the
 * caller answers itself.
 */
export interface OidcGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}

export interface OidcProvider {
  on(
    event: "grant.error",
    listener: (
      ctx: unknown,
      error: { error_detail?: string; cause?: { message?: string } },
    ) => void,
  ): void;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<{
    prompt: {
      name: string;
      details: {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
    };
    params: { client_id: string };
    session?: { accountId: string };
    grantId?: string;
  }>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission: boolean },
  ): Promise<void>;
  Grant: {
    new (init: { accountId: string; clientId: string }): OidcGrant;
    find(id: string): Promise<OidcGrant | undefined>;
  };
}

export const OidcProviderClass = Provider as new (issuer: string, setup: unknown) => OidcProvider;
