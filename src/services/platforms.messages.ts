/** What managing platforms and signing in at them answer when they refuse. */
export const platformMessages = {
  noSuchPlatform: "No such platform in this app",
  nameTaken: "Another platform of this app has that name",
  providerUnavailable: "The platform's identity provider is unavailable",
  providerRefused: (error: string) => `The identity provider refused the sign-in (${error})`,
  providerAnswerInvalid: (reason: string) =>
    `The identity provider's answer did not validate: ${reason}`,
  unknownState: "unknown or used state",
  linkedToAnotherUser: "This provider account is linked to another user",
  userMayNotSignIn: "This user cannot sign in",
  noUsableEmail: (claim: string) =>
    `The identity provider gave no usable email (claim ${claim}); a user needs one`,
  emailUnverified:
    "The identity provider does not say this email is verified (email_verified); only verified addresses sign in the first time",
  linkRequired: (platform: string) =>
    `This address has an account: sign in to it, then link ${platform} at POST /v1/users/me/platforms/${platform}/link`,
  emailTaken: "A user with this email exists in this app already",
  linkedMeanwhile: "This account was linked meanwhile; retry",
} as const;
