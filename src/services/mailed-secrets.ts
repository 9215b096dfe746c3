import { users } from "../db/schema";
import { newId } from "../lib/ids";
import type { Database } from "../ports";
import type { AppRecord } from "./apps";
import { type AuditEvent, audited } from "./audit";
import type { ServiceContext } from "./context";
import { mayMail } from "./email";
import { findUserByEmail, type UserRecord } from "./users";

/** Thrown inside the stand-in's transaction so that nothing of it commits. */
class StandIn extends Error {}

/**
 * Mails a one-time secret (a reset link, a sign-in code) to the account an address names, with
 * the same work and answer whether or not there is one: with no account (or one that may not get
 * mail now), `change` runs for a stand-in user inserted in a transaction that is rolled back, so
 * neither the answer nor its timing tells who has an account. Answers the outbox ids queued.
 */
export async function mailToAccount(
  ctx: ServiceContext,
  app: AppRecord,
  email: string,
  change: (tx: Database, user: Pick<UserRecord, "id" | "email">, now: Date) => Promise<string>,
  event: (user: Pick<UserRecord, "id" | "email">) => AuditEvent,
): Promise<string[]> {
  const user = await findUserByEmail(ctx.db, app.id, email);
  const mayGetMail = await mayMail(ctx, app, email);
  const recipient = user?.status === "active" && mayGetMail ? user : undefined;
  try {
    const sent = await audited(
      ctx,
      async (tx, now) => {
        const target = recipient ?? (await insertStandIn(tx, app, now));
        return { target, mailId: await change(tx, target, now) };
      },
      ({ target }) => {
        if (!recipient) throw new StandIn();
        return event(target);
      },
    );
    return [sent.mailId];
  } catch (error) {
    if (error instanceof StandIn) return [];
    throw error;
  }
}

async function insertStandIn(tx: Database, app: AppRecord, now: Date) {
  const id = newId("usr");
  // Not the address asked about: an account the mail may not go to may hold it.
  const email = `${id.toLowerCase()}@stand-in.invalid`;
  await tx
    .insert(users)
    .values({ id, app_id: app.id, email, status: "deactivated", created_at: now, updated_at: now });
  return { id, email };
}
