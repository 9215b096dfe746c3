import { createRoute, z } from "@hono/zod-openapi";
import { UserSchema } from "../../db/schema";
import {
  EmailChangeSchema,
  SignUpSchema,
  VerificationRequestSchema,
  VerificationSentSchema,
  VerifyEmailSchema,
} from "../../db/schema/signup";
import {
  bearerSecurity,
  errorResponses,
  jsonContent,
  jsonOrForm,
  resourceSchema,
} from "../../http/openapi";
import { TokenResponseSchema } from "../../http/token-response";
import { guard } from "../../middleware/auth";
import { rateLimit } from "../../middleware/rate-limit";

const tags = ["Sign-up"];
const AppParams = z.object({ app_name: z.string().min(1).max(63) });
const signInClass = [rateLimit("sign-in")];

export const signUp = createRoute({
  method: "post",
  path: "/apps/{app_name}/signup",
  middleware: signInClass,
  tags,
  summary: "Create an account (when the app's `signup` setting allows it)",
  description:
    "`closed`: 403. `invite_only`: needs `invite_token` of a pending invite for this email (the user gets its role). `open`: any address within `signup_email_domains`. With `require_email_verification` off the user is signed in at once (201; a taken email is a 409, so this mode reveals which addresses have accounts); with it on the answer is always 202 and a mail goes out: a verification link to a new address, an `account_exists` notice with a reset link to a taken one.",
  request: { params: AppParams, body: jsonOrForm(SignUpSchema) },
  responses: {
    201: jsonContent(
      TokenResponseSchema.extend({ user: UserSchema }).openapi("SignedUp"),
      "The new user's tokens (verification not required; a verification mail is sent)",
    ),
    202: jsonContent(VerificationSentSchema, "A mail is on its way (verification required)"),
    ...errorResponses(400, 403, 404, 409, 415, 429),
  },
});

export const sendVerification = createRoute({
  method: "post",
  path: "/apps/{app_name}/email/verification",
  middleware: signInClass,
  tags,
  summary: "Send a new email-verification link",
  description:
    "Always 202, whether or not the address has an account; the mail goes only to an unverified user.",
  request: { params: AppParams, body: jsonOrForm(VerificationRequestSchema) },
  responses: {
    202: jsonContent(VerificationSentSchema, "A mail is on its way if the address needs one"),
    ...errorResponses(400, 403, 404, 415, 429),
  },
});

export const verifyEmail = createRoute({
  method: "post",
  path: "/apps/{app_name}/email/verify",
  middleware: signInClass,
  tags,
  summary: "Follow a mailed link: verify the email, or apply an email change",
  request: { params: AppParams, body: jsonOrForm(VerifyEmailSchema) },
  responses: {
    200: jsonContent(resourceSchema(UserSchema, "VerifiedUser"), "The user, verified"),
    ...errorResponses(400, 403, 404, 409, 415, 429),
  },
});

export const changeEmail = createRoute({
  method: "post",
  path: "/users/me/email",
  middleware: [guard({ scope: "self" })],
  tags,
  summary: "Change the caller's email: a confirmation link goes to the new address",
  description:
    "Needs the current password (wrong ones count towards the account's lockout). The new address gets an `email_change` link (followed at `/apps/{app_name}/email/verify`), the old one a notice; the email changes when the link is followed.",
  security: bearerSecurity,
  request: { body: jsonOrForm(EmailChangeSchema) },
  responses: {
    202: jsonContent(VerificationSentSchema, "The confirmation link is on its way"),
    ...errorResponses(400, 401, 403, 409, 415, 429),
  },
});
