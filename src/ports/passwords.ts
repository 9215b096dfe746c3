export interface PasswordHasher {
  /** A PHC string: `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`. */
  hash(password: string): Promise<string>;
  /** `needsRehash` is true when the password is valid but was hashed with other parameters. */
  verify(stored: string, password: string): Promise<{ valid: boolean; needsRehash: boolean }>;
  /** A hash no password matches, at this hasher's params: verify against it for unknown users. */
  readonly dummyHash: string;
}
