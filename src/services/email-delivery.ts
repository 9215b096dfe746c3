import { and, asc, eq, inArray, lte, sql } from "drizzle-orm";
import { devMailboxEnabled } from "../config";
import { emailOutbox } from "../db/schema";
import { EmailDeliveryError } from "../ports/email";
import { recordAuditIn } from "./audit";
import type { ServiceContext } from "./context";

/** How long a claimed row is left to its dispatcher before another may take it up again. */
const LEASE_MS = 2 * 60_000;
/** The wait after the 1st, 2nd, … failed attempt; the 6th failure gives up. */
const BACKOFF_MS = [60_000, 5 * 60_000, 30 * 60_000, 2 * 3_600_000, 6 * 3_600_000];
const MAX_ATTEMPTS = BACKOFF_MS.length + 1;
const DEFAULT_LIMIT = 50;

type OutboxRow = typeof emailOutbox.$inferSelect;

export interface DeliveryReport {
  sent: number;
  failed: number;
  retried: number;
}

/**
 * Hands due outbox rows (all, or the `ids` given) to `ctx.email`. Each row is claimed with one
 * conditional UPDATE that counts the attempt and pushes `next_attempt_at` past a lease, so of two
 * dispatchers only the one whose UPDATE matched sends it. A retryable failure waits 1 m, 5 m,
 * 30 m, 2 h, 6 h, then the row fails; any other failure fails it at once. Never throws: what
 * goes wrong is logged.
 */
export async function deliverDueEmail(
  ctx: ServiceContext,
  options: { ids?: string[]; limit?: number } = {},
): Promise<DeliveryReport> {
  const report: DeliveryReport = { sent: 0, failed: 0, retried: 0 };
  if (options.ids?.length === 0) return report;
  try {
    const due = await ctx.db
      .select({ id: emailOutbox.id })
      .from(emailOutbox)
      .where(dueCondition(ctx.clock.now(), options.ids))
      .orderBy(asc(emailOutbox.next_attempt_at))
      .limit(options.limit ?? DEFAULT_LIMIT);
    for (const { id } of due) {
      const outcome = await deliverOne(ctx, id);
      if (outcome) report[outcome] += 1;
    }
  } catch (error) {
    ctx.logger.error("email delivery failed", { error });
  }
  return report;
}

function dueCondition(now: Date, ids?: string[]) {
  return and(
    eq(emailOutbox.status, "pending"),
    lte(emailOutbox.next_attempt_at, now),
    ids ? inArray(emailOutbox.id, ids) : undefined,
  );
}

async function deliverOne(
  ctx: ServiceContext,
  id: string,
): Promise<keyof DeliveryReport | undefined> {
  const claimedAt = ctx.clock.now();
  const [row] = await ctx.db
    .update(emailOutbox)
    .set({
      attempts: sql`${emailOutbox.attempts} + 1`,
      next_attempt_at: new Date(claimedAt.getTime() + LEASE_MS),
    })
    .where(and(eq(emailOutbox.id, id), dueCondition(claimedAt)))
    .returning();
  if (!row) return undefined;
  const log = { email_id: row.id, kind: row.kind, attempt: row.attempts, sender: ctx.email.name };
  try {
    await ctx.email.send({
      id: row.id,
      to: row.to_address,
      from: ctx.config.EMAIL_FROM,
      fromName: row.from_name,
      subject: row.subject,
      text: row.text_body ?? "",
      html: row.html_body ?? "",
    });
  } catch (error) {
    const retryable = !(error instanceof EmailDeliveryError) || error.retryable;
    const lastError = error instanceof Error ? error.message : String(error);
    const givesUp = !retryable || row.attempts >= MAX_ATTEMPTS;
    if (givesUp) {
      await finish(ctx, row, { status: "failed", last_error: lastError });
      ctx.logger.warn("email failed", { ...log, error: lastError });
      return "failed";
    }
    const wait = BACKOFF_MS[row.attempts - 1] ?? LEASE_MS;
    await ctx.db
      .update(emailOutbox)
      .set({ next_attempt_at: new Date(ctx.clock.now().getTime() + wait), last_error: lastError })
      .where(and(eq(emailOutbox.id, row.id), eq(emailOutbox.attempts, row.attempts)));
    ctx.logger.info("email will be retried", { ...log, error: lastError, retry_in_ms: wait });
    return "retried";
  }
  await finish(ctx, row, { status: "sent", last_error: null });
  ctx.logger.info("email sent", log);
  return "sent";
}

/**
 * Records the end of a row and its audit event. The bodies (links, codes) are dropped, unless
 * the development mailbox shows them. Only the attempt this dispatcher claimed may end the row.
 */
async function finish(
  ctx: ServiceContext,
  row: OutboxRow,
  outcome: { status: "sent" | "failed"; last_error: string | null },
) {
  const now = ctx.clock.now();
  const keepBodies = devMailboxEnabled(ctx.config);
  await ctx.db.transaction(async (tx) => {
    const [ended] = await tx
      .update(emailOutbox)
      .set({
        ...outcome,
        sent_at: outcome.status === "sent" ? now : null,
        ...(keepBodies ? {} : { text_body: null, html_body: null }),
      })
      .where(and(eq(emailOutbox.id, row.id), eq(emailOutbox.attempts, row.attempts)))
      .returning({ id: emailOutbox.id });
    if (!ended) return;
    await recordAuditIn(
      tx,
      ctx.audit,
      {
        appId: row.app_id,
        action: outcome.status === "sent" ? "email.sent" : "email.failed",
        target: { type: "email", id: row.id },
        metadata: { kind: row.kind, attempts: row.attempts },
      },
      now,
    );
  });
}
