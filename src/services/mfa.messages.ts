/** What turning two-factor authentication on and off answers when it refuses. */
export const mfaMessages = {
  onAlready: "Two-factor authentication is on already",
  onAlreadyDisableFirst: "Two-factor authentication is on already; disable it first",
  off: "Two-factor authentication is off",
  enrollFirst: "Start enrollment first (POST /v1/users/me/2fa)",
  invalidCode: "The code is not valid",
} as const;
