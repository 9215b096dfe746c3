/** What the token endpoint's sign-ins answer when they refuse; each message written once. */
export const signInMessages = {
  invalidCredentials: "Invalid email or password",
  invalidRefreshToken: "The refresh token is invalid, expired or revoked",
  invalidMfaToken: "The mfa_token is invalid, expired or used",
  invalidSecondFactor: "The code is not valid or was used already",
  mfaRequired:
    "A second factor is required: send grant_type=mfa_otp with the mfa_token and otp (or recovery_code)",
  userMayNotSignIn: "The user cannot sign in",
  emailNotVerified:
    "Confirm your email first: follow the link in the verification mail (or ask for a new one)",
  noSuchSession: "No such session of yours",
} as const;
