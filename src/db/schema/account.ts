import { index, integer, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { apps } from "./apps";
import { users } from "./identity";

export const accountTokenPurposes = [
  "email_verification",
  "password_reset",
  "email_otp",
  "email_change",
] as const;
export type AccountTokenPurpose = (typeof accountTokenPurposes)[number];

/**
 * One-time secrets mailed to a user: an email-verification or reset link, a sign-in code or link,
 * the confirmation of a new address. Stored as SHA-256 only; bound to the user and the purpose;
 * issuing a new one for the same user and purpose ends the previous one.
 */
export const accountTokens = pgTable(
  "account_tokens",
  {
    id: text("id").primaryKey(),
    app_id: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    user_id: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    purpose: text("purpose", { enum: accountTokenPurposes }).notNull(),
    /** SHA-256 of the link's secret. */
    token_hash: text("token_hash").notNull(),
    /** SHA-256 of the short code typed by hand (sign-in codes), bound to this user. */
    code_hash: text("code_hash"),
    /** The address the token was mailed to (for an email change: the new address). */
    email: text("email").notNull(),
    expires_at: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    used_at: timestamp("used_at", { withTimezone: true, mode: "date" }),
    created_at: timestamp("created_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow(),
  },
  (table) => [
    uniqueIndex("account_tokens_hash_key").on(table.token_hash),
    index("account_tokens_user_purpose_idx").on(table.user_id, table.purpose),
  ],
);

export const emailStatus = ["pending", "sent", "failed"] as const;

/**
 * Mail waiting to be handed to the sender, written in the transaction of the change it reports;
 * delivered after the answer and by the scheduled job, retried with backoff. Bodies are cleared
 * once the message is done, unless the development mailbox keeps them.
 */
export const emailOutbox = pgTable(
  "email_outbox",
  {
    id: text("id").primaryKey(),
    app_id: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    /** What the message is: `email_verification`, `password_reset`, `email_changed`, … */
    kind: text("kind").notNull(),
    to_address: text("to_address").notNull(),
    from_name: text("from_name").notNull(),
    subject: text("subject").notNull(),
    text_body: text("text_body"),
    html_body: text("html_body"),
    status: text("status", { enum: emailStatus }).notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    next_attempt_at: timestamp("next_attempt_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow(),
    last_error: text("last_error"),
    sent_at: timestamp("sent_at", { withTimezone: true, mode: "date" }),
    created_at: timestamp("created_at", { withTimezone: true, mode: "date" })
      .notNull()
      .defaultNow(),
  },
  (table) => [
    index("email_outbox_due_idx").on(table.status, table.next_attempt_at),
    index("email_outbox_app_idx").on(table.app_id, table.created_at),
  ],
);
