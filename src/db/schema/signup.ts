import { z } from "@hono/zod-openapi";
import { emailSchema } from "./identity";

export const SignUpSchema = z
  .object({
    email: emailSchema,
    password: z.string().min(1).max(1024).openapi({ example: "correct horse battery staple" }),
    display_name: z.string().min(1).max(200).optional().openapi({ example: "Jane Chen" }),
    invite_token: z.string().min(1).max(200).optional().openapi({
      description: "With `signup: invite_only`: the token of a pending invite for this email",
      example: "inv_tok_…",
    }),
  })
  .strict()
  .openapi("SignUp");

export const VerificationRequestSchema = z
  .object({ email: emailSchema })
  .strict()
  .openapi("VerificationRequest");

export const VerifyEmailSchema = z
  .object({
    token: z.string().min(1).max(200).openapi({
      example: "emv_…",
      description: "The mailed link's token (`emv_…`, or `emc_…` for an email change)",
    }),
  })
  .strict()
  .openapi("VerifyEmail");

export const EmailChangeSchema = z
  .object({
    email: emailSchema.openapi({ description: "The new address" }),
    password: z.string().min(1).max(1024).openapi({ description: "The current password" }),
  })
  .strict()
  .openapi("EmailChange");

export const VerificationSentSchema = z
  .object({ status: z.literal("verification_sent") })
  .openapi("VerificationSent");
