/** What sign-up, email verification and email change answer; each message written once. */
export const signupMessages = {
  closed: "Sign-up is closed for this app",
  inviteRequired: "Sign-up in this app needs the token of a pending invite for this email",
  domainNotAllowed: "Sign-up is not open to this email's domain",
  emailTaken: "A user with this email exists in this app already",
  invalidLink: "The link is invalid or has expired",
  sameEmail: "That is your email already",
} as const;
