/** What the email sign-in answers when it refuses; each message written once. */
export const emailSignInMessages = {
  wrongCode: "The code is not right or has expired",
} as const;
