import { eq } from "drizzle-orm";
import { auditLogs, emailOutbox } from "../../src/db/schema";
import type { DatabasePort, EmailMessage, EmailSender } from "../../src/ports";
import { withDatabase } from "../../src/ports/database";
import { type Services, systemContext } from "../../src/services/context";
import { deliverDueEmail } from "../../src/services/email-delivery";

type OutboxInsert = typeof emailOutbox.$inferInsert;
let sequence = 0;

/** Writes an outbox row as a flow would (due now on `at`), with `values` over the defaults. */
export async function insertOutbox(
  db: DatabasePort,
  values: Pick<OutboxInsert, "app_id" | "next_attempt_at"> & Partial<OutboxInsert>,
) {
  sequence += 1;
  const row: OutboxInsert = {
    id: `eml_test_${Date.now().toString(36)}_${sequence}`,
    kind: "email_verification",
    to_address: `user${sequence}@example.test`,
    from_name: "Acme Rockets",
    subject: `Confirm your address (${sequence})`,
    text_body: `Open https://heimdall.test/verify?token=secret-${sequence}`,
    html_body: `<p><a href="https://heimdall.test/verify?token=secret-${sequence}">Confirm</a></p>`,
    created_at: values.next_attempt_at,
    ...values,
  };
  await withDatabase(db, (open) => open().insert(emailOutbox).values(row));
  return row as OutboxInsert & { id: string };
}

export function readOutbox(db: DatabasePort, id: string) {
  return withDatabase(db, async (open) => {
    const [row] = await open().select().from(emailOutbox).where(eq(emailOutbox.id, id));
    if (!row) throw new Error(`no outbox row ${id}`);
    return row;
  });
}

export function auditOf(db: DatabasePort, emailId: string) {
  return withDatabase(db, (open) =>
    open().select().from(auditLogs).where(eq(auditLogs.target_id, emailId)),
  );
}

/** Runs the dispatcher as the scheduled job would: a system context over its own session. */
export function deliver(
  services: Services,
  db: DatabasePort,
  options?: Parameters<typeof deliverDueEmail>[1],
) {
  return withDatabase(db, (open) => deliverDueEmail(systemContext(services, open), options));
}

/**
 * A sender that keeps what it was given; `outcome` decides each hand-over (throw to refuse).
 */
export function recordingSender(
  outcome: (message: EmailMessage) => void | Promise<void> = () => {},
): EmailSender & { sent: EmailMessage[] } {
  const sent: EmailMessage[] = [];
  return {
    name: "recording",
    sent,
    async send(message) {
      sent.push(message);
      await outcome(message);
    },
  };
}
