import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import { apps, emailOutbox } from "../db/schema";
import type { ServiceContext } from "./context";

export interface MailboxFilter {
  /** One app's mail, by the app's name; every app's otherwise. */
  app?: string | undefined;
  to?: string | undefined;
  limit: number;
}

/**
 * The latest outbox messages, newest first, bodies included: the development mailbox a developer
 * reads the links and codes from. Mounted only where `devMailboxEnabled` (never in production).
 */
export async function listMailbox(ctx: ServiceContext, filter: MailboxFilter) {
  const conditions: SQL[] = [];
  if (filter.app) conditions.push(sql`lower(${apps.name}) = lower(${filter.app})`);
  if (filter.to) conditions.push(sql`lower(${emailOutbox.to_address}) = lower(${filter.to})`);
  return ctx.db
    .select({
      id: emailOutbox.id,
      app: apps.name,
      kind: emailOutbox.kind,
      to: emailOutbox.to_address,
      from_name: emailOutbox.from_name,
      subject: emailOutbox.subject,
      text: emailOutbox.text_body,
      html: emailOutbox.html_body,
      status: emailOutbox.status,
      attempts: emailOutbox.attempts,
      last_error: emailOutbox.last_error,
      created_at: emailOutbox.created_at,
      sent_at: emailOutbox.sent_at,
    })
    .from(emailOutbox)
    .innerJoin(apps, eq(apps.id, emailOutbox.app_id))
    .where(and(...conditions))
    .orderBy(desc(emailOutbox.created_at), desc(emailOutbox.id))
    .limit(filter.limit);
}
