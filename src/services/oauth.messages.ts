/** What the authorization endpoint's pages, its redirects and the code exchange answer. */
export const oauthMessages = {
  unknownClient: "Unknown client_id for this app.",
  redirectUriNotRegistered: "The redirect_uri is not registered for this client.",
  answeredAlready: "This sign-in was answered already; start again.",
  formInvalid: "The sign-in form is not valid; start again.",
  tookTooLong: "The sign-in took too long; start again.",
  signInFirst: "Sign in first.",
  onlyCodeResponseType: "Only response_type=code is supported",
  pkceRequired: "PKCE is required: code_challenge with code_challenge_method=S256",
  scopeRequired: "A scope is required",
  scopesNotAllowed: (scopes: string[]) => `Not allowed for this client: ${scopes.join(" ")}`,
  invalidCode: "The code is invalid, expired, used, or not for this client",
  noSuchGrant: "No such grant",
} as const;
