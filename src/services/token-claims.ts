/** The claims of a Heimdall access token (RFC 9068 profile, `typ: at+jwt`). */
export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string;
  /** The app's id. */
  app: string;
  roles: string[];
  permissions: string[];
  jti: string;
  iat: number;
  exp: number;
  /** The session (refresh token family) the token came from, when it came from one. */
  sid?: string;
  /**
   * The client the token was issued to (RFC 9068): a service credential's (`client_credentials`,
   * `sub` is the credential), or an OAuth client's (authorization code, `sub` is the user).
   */
  client_id?: string;
  /** The scopes an OAuth client was granted, space-separated. */
  scope?: string;
}

/** What tells one kind of Heimdall JWT from another: its `typ` and its audience. */
export interface TokenProfile {
  type: string;
  audience: (appName: string) => string;
}
