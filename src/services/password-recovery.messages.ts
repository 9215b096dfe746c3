/** What the password endpoints answer when they refuse; each message written once. */
export const passwordMessages = {
  invalidLink: "The link is invalid or has expired",
} as const;
