import { emailOutbox } from "../db/schema";
import type { EmailKind } from "../db/schema/settings";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import { type AppRecord, settingsOf } from "./apps";
import type { ServiceContext } from "./context";
import { type EmailVariables, renderEmail } from "./email-templates";

/**
 * Puts a message for one of an app's users in the outbox, inside the caller's transaction, so it
 * exists exactly when the change it reports committed. Delivery happens after the answer (and by
 * the scheduled job); answers the outbox id to deliver.
 */
export async function queueEmail(
  db: Database,
  app: AppRecord,
  message: { kind: EmailKind; to: string; variables: Omit<EmailVariables, "app_name"> },
  now: Date,
): Promise<string> {
  const rendered = renderEmail(app, message.kind, {
    app_name: app.display_name,
    ...message.variables,
  });
  const id = newId("msg");
  await db.insert(emailOutbox).values({
    id,
    app_id: app.id,
    kind: message.kind,
    to_address: message.to,
    from_name: settingsOf(app).email_sender_name ?? app.display_name,
    subject: rendered.subject,
    text_body: rendered.text,
    html_body: rendered.html,
    next_attempt_at: now,
    created_at: now,
  });
  return id;
}

/** At most this many account mails to one address of an app in the window (no mail bombing). */
const MAILS_PER_ADDRESS = { limit: 5, windowMs: 15 * 60_000 };

/**
 * Whether another account mail may go to this address now. The answer the caller gives does not
 * change when it may not (no enumeration, no mail bombing); the mail is simply not sent.
 */
export async function mayMail(
  ctx: Pick<ServiceContext, "limiter">,
  app: AppRecord,
  address: string,
) {
  const result = await ctx.limiter.limit(
    `mail:${app.id}:${address.toLowerCase()}`,
    MAILS_PER_ADDRESS,
  );
  return result.success;
}
