/**
 * Whether a password appears in a corpus of breached passwords, asked by k-anonymity: only the
 * first five hex digits of its SHA-1 leave Heimdall. `undefined` when the service could not be
 * asked (the check fails open: an outage must not stop sign-ups).
 */
export interface BreachedPasswords {
  isBreached(password: string): Promise<boolean | undefined>;
}
