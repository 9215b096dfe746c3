import { and, desc, eq, sql } from "drizzle-orm";
import { emailOutbox } from "../../src/db/schema";
import type { DatabasePort } from "../../src/ports";

export type OutboxRow = typeof emailOutbox.$inferSelect;

/**
 * The messages queued for an address, newest first, read from the outbox itself (bodies are kept
 * there while pending, and after delivery when the development mailbox is on: `DEV_MAILBOX=true`).
 */
export async function messagesTo(db: DatabasePort, to: string, kind?: string) {
  const session = db.session();
  try {
    return await session.db
      .select()
      .from(emailOutbox)
      .where(
        and(
          sql`lower(${emailOutbox.to_address}) = ${to.toLowerCase()}`,
          kind ? eq(emailOutbox.kind, kind) : undefined,
        ),
      )
      .orderBy(desc(emailOutbox.created_at), desc(emailOutbox.id));
  } finally {
    await session.release();
  }
}

/** The newest message to an address (of a kind), or a failed expectation naming what is missing. */
export async function latestMessageTo(db: DatabasePort, to: string, kind?: string) {
  const [message] = await messagesTo(db, to, kind);
  if (!message) throw new Error(`no ${kind ?? ""} message to ${to} in the outbox`);
  return message;
}

/** The one-time token with this prefix in a message's text (`emv_…`, `pwr_…`, `otl_…`, `emc_…`). */
export function tokenIn(message: Pick<OutboxRow, "text_body">, prefix: string) {
  const match = new RegExp(`${prefix}[A-Za-z0-9_-]{16,}`).exec(message.text_body ?? "");
  if (!match) throw new Error(`no ${prefix}… token in the message text`);
  return decodeURIComponent(match[0]);
}

/** The sign-in code (6 digits) in a message's text. */
export function codeIn(message: Pick<OutboxRow, "text_body">) {
  const match = /\b(\d{6})\b/.exec(message.text_body ?? "");
  if (!match?.[1]) throw new Error("no code in the message text");
  return match[1];
}
