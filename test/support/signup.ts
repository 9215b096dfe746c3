import { and, asc, eq, sql } from "drizzle-orm";
import { expect } from "vitest";
import { auditLogs, users } from "../../src/db/schema";
import type { DatabasePort } from "../../src/ports";
import { adminHeaders } from "./app";
import { type Requester, send } from "./identity";

/** Changes an app's settings as the platform admin. */
export async function configure(app: Requester, appName: string, settings: object) {
  const res = await send(app, "PATCH", `/v1/apps/${appName}/settings`, {
    body: settings,
    headers: adminHeaders,
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** The audit actions recorded about a user (as target), oldest first. */
export async function auditActionsAbout(db: DatabasePort, userId: string) {
  const session = db.session();
  try {
    const rows = await session.db
      .select({ action: auditLogs.action })
      .from(auditLogs)
      .where(eq(auditLogs.target_id, userId))
      .orderBy(asc(auditLogs.timestamp), asc(auditLogs.id));
    return rows.map((row) => row.action);
  } finally {
    await session.release();
  }
}

/** The stored user of an app with this email, if any. */
export async function storedUser(db: DatabasePort, appId: string, email: string) {
  const session = db.session();
  try {
    const [row] = await session.db
      .select()
      .from(users)
      .where(and(eq(users.app_id, appId), sql`lower(${users.email}) = lower(${email})`));
    return row;
  } finally {
    await session.release();
  }
}

/** POSTs a form body (as a browser or a hosted page does). */
export const postForm = (app: Requester, path: string, fields: Record<string, string>) =>
  app.request(path, { method: "POST", body: new URLSearchParams(fields), redirect: "manual" });
