/**
 * No account enumeration: where the app requires verified emails, sign-up and the verification
 * resend answer an address with an account and one without with the same status and bytes, after
 * the same work (timed: the medians of 50 tries each differ by less than 15 ms).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { createTestApp } from "./support/app";
import { databaseBackends } from "./support/backends";
import { createTenant, send } from "./support/identity";
import { messagesTo } from "./support/mailbox";
import { configure } from "./support/signup";

const TRIES = 50;
const STRONG = "a long enough passphrase";

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return ((sorted[Math.floor(middle - 0.5)] ?? 0) + (sorted[Math.ceil(middle - 0.5)] ?? 0)) / 2;
};

/** Status, body text and duration of a request; request ids differ, so none is compared. */
async function timed(request: () => Response | Promise<Response>) {
  const started = performance.now();
  const res = await request();
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - started };
}

describe.each(databaseBackends("enumeration resistance"))("no enumeration on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;

  beforeAll(async () => {
    const opened = await backend.open();
    ({ db, dispose } = opened);
    ({ app } = createTestApp({ db, env: { DEV_MAILBOX: "true" } }));
    await createTenant(app, "quiet");
    await configure(app, "quiet", { signup: "open", require_email_verification: true });
    // An unverified user: the resend really mails them.
    await send(app, "POST", "/v1/apps/quiet/signup", {
      body: { email: "pending@quiet.test", password: STRONG },
    });
  });
  afterAll(() => dispose());

  /** Alternates the two cases so that drift (JIT, caches) weighs on both alike. */
  async function compare(
    existing: (i: number) => Response | Promise<Response>,
    unknown: (i: number) => Response | Promise<Response>,
  ) {
    const known: number[] = [];
    const fresh: number[] = [];
    const bodies = new Set<string>();
    const statuses = new Set<number>();
    // Warm-up, not measured.
    await (await existing(-1)).text();
    await (await unknown(-1)).text();
    for (let i = 0; i < TRIES; i += 1) {
      for (const [request, into] of [
        [existing, known],
        [unknown, fresh],
      ] as const) {
        const result = await timed(() => request(i));
        statuses.add(result.status);
        bodies.add(result.text);
        into.push(result.ms);
      }
    }
    const difference = Math.abs(median(known) - median(fresh));
    console.info(
      `${backend.name}: median existing ${median(known).toFixed(2)} ms, unknown ${median(fresh).toFixed(2)} ms, difference ${difference.toFixed(2)} ms`,
    );
    return { statuses: [...statuses], bodies: [...bodies], difference };
  }

  it("sign-up: the same 202 and bytes for a taken and a new address, in similar time", async () => {
    const signUp = (email: string) =>
      send(app, "POST", "/v1/apps/quiet/signup", { body: { email, password: STRONG } });
    const result = await compare(
      () => signUp("admin@quiet.test"),
      (i) => signUp(`new-${i}@quiet.test`),
    );
    expect(result.statuses).toEqual([202]);
    expect(result.bodies).toEqual(['{"status":"verification_sent"}']);
    expect(result.difference).toBeLessThan(15);
    // The two really differed: the owner was told, the new addresses were sent links.
    expect((await messagesTo(db, "admin@quiet.test", "account_exists")).length).toBeGreaterThan(0);
    expect(await messagesTo(db, "new-0@quiet.test", "email_verification")).toHaveLength(1);
  });

  it("verification resend: the same 202 and bytes for an unverified user and an unknown address", async () => {
    const resend = (email: string) =>
      send(app, "POST", "/v1/apps/quiet/email/verification", { body: { email } });
    const result = await compare(
      () => resend("pending@quiet.test"),
      (i) => resend(`nobody-${i}@quiet.test`),
    );
    expect(result.statuses).toEqual([202]);
    expect(result.bodies).toEqual(['{"status":"verification_sent"}']);
    expect(result.difference).toBeLessThan(15);
    expect(
      (await messagesTo(db, "pending@quiet.test", "email_verification")).length,
    ).toBeGreaterThan(1);
    expect(await messagesTo(db, "nobody-0@quiet.test")).toEqual([]);
  });
});
