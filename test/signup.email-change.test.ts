import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { changeEmail, verifyEmail } from "../src/routes/signup/signup.routes";
import { updateUser } from "../src/routes/users/users.routes";
import { adminHeaders, createTestApp } from "./support/app";
import { databaseBackends } from "./support/backends";
import { expectError, readBody } from "./support/http";
import { bearer, createTenant, PASSWORD, send, type Tenant } from "./support/identity";
import { latestMessageTo, messagesTo, tokenIn } from "./support/mailbox";
import { auditActionsAbout, storedUser } from "./support/signup";

const admin = { headers: adminHeaders };

describe.each(databaseBackends("email change"))("email change on $name", (backend) => {
  let app: App;
  let db: DatabasePort;
  let dispose: () => Promise<void>;
  let tenant: Tenant;

  beforeAll(async () => {
    const opened = await backend.open();
    ({ db, dispose } = opened);
    ({ app } = createTestApp({ db, env: { DEV_MAILBOX: "true" } }));
    tenant = await createTenant(app, "mover");
  });
  afterAll(() => dispose());

  const request = (accessToken: string, body: Record<string, unknown>) =>
    send(app, "POST", "/v1/users/me/email", { body, headers: bearer(accessToken) });
  const verify = (token: string) =>
    send(app, "POST", "/v1/apps/mover/email/verify", { body: { token } });
  const newUser = async (email: string) => {
    const res = await send(app, "POST", "/v1/apps/mover/users", {
      body: { email, password: PASSWORD },
      ...admin,
    });
    expect(res.status).toBe(201);
    const signedIn = await send(app, "POST", "/v1/apps/mover/tokens", {
      body: { grant_type: "password", email, password: PASSWORD },
    });
    return (await signedIn.json()).access_token as string;
  };

  it("refuses a wrong password (400) without mailing anyone", async () => {
    const body = await expectError(
      await request(tenant.reader.accessToken, { email: "new@mover.test", password: "wrong" }),
      400,
      "invalid_request",
    );
    expect(body.error.message).toBe("The password is not right");
    expect(await messagesTo(db, "new@mover.test")).toEqual([]);
    expect(await messagesTo(db, tenant.reader.email)).toEqual([]);
  });

  it("mails a link to the new address and a notice to the old; the link applies the change", async () => {
    const res = await request(tenant.reader.accessToken, {
      email: "reader.new@mover.test",
      password: PASSWORD,
    });
    expect(await readBody(res, changeEmail, 202)).toEqual({ status: "verification_sent" });
    // Nothing changes before the link is followed.
    expect((await storedUser(db, tenant.app.id, tenant.reader.email))?.id).toBe(tenant.reader.id);
    const link = await latestMessageTo(db, "reader.new@mover.test", "email_change");
    const notice = await latestMessageTo(db, tenant.reader.email, "email_changed");
    expect(notice.text_body).toContain("reader.new@mover.test");
    const token = tokenIn(link, "emc_");

    const verified = await readBody(await verify(token), verifyEmail, 200);
    expect(verified.data).toMatchObject({
      id: tenant.reader.id,
      email: "reader.new@mover.test",
      email_verified: true,
    });
    expect(await storedUser(db, tenant.app.id, tenant.reader.email)).toBeUndefined();
    await expectError(await verify(token), 400, "invalid_request");
    expect(await auditActionsAbout(db, tenant.reader.id)).toEqual(
      expect.arrayContaining(["email.change_requested", "email.changed"]),
    );
    // The session the change was asked from goes on.
    const me = await send(app, "GET", "/v1/users/me", {
      headers: bearer(tenant.reader.accessToken),
    });
    expect(me.status).toBe(200);
  });

  it("answers 409 when the new address was taken meanwhile, and leaves the email as it was", async () => {
    const token = await newUser("carol@mover.test");
    await readBody(
      await request(token, { email: "wanted@mover.test", password: PASSWORD }),
      changeEmail,
      202,
    );
    const link = tokenIn(await latestMessageTo(db, "wanted@mover.test", "email_change"), "emc_");
    await newUser("wanted@mover.test");
    await expectError(await verify(link), 409, "conflict");
    expect(await storedUser(db, tenant.app.id, "carol@mover.test")).toBeDefined();
    // Asking for a taken address is refused at once.
    await expectError(
      await request(token, { email: "WANTED@mover.test", password: PASSWORD }),
      409,
      "conflict",
    );
  });

  it("is for a signed-in user only", async () => {
    await expectError(
      await send(app, "POST", "/v1/users/me/email", {
        body: { email: "x@mover.test", password: PASSWORD },
      }),
      401,
      "unauthorized",
    );
  });

  it("GraphQL changeEmail calls the same service", async () => {
    const token = await newUser("graph@mover.test");
    const mutate = async (password: string) => {
      const res = await send(app, "POST", "/v1/gql", {
        body: {
          query: "mutation($e: String!, $p: String!) { changeEmail(email: $e, password: $p) }",
          variables: { e: "graph.new@mover.test", p: password },
        },
        headers: bearer(token),
      });
      return res.json();
    };
    const refused = await mutate("wrong");
    expect(refused.data).toBeNull();
    expect(JSON.stringify(refused.errors)).toContain("The password is not right");
    expect(await messagesTo(db, "graph.new@mover.test")).toEqual([]);
    expect(await mutate(PASSWORD)).toEqual({ data: { changeEmail: "verification_sent" } });
    expect(
      tokenIn(await latestMessageTo(db, "graph.new@mover.test", "email_change"), "emc_"),
    ).toMatch(/^emc_/);
    await latestMessageTo(db, "graph@mover.test", "email_changed");
  });

  it("lets an admin set email_verified true and back to false", async () => {
    const path = `/v1/apps/mover/users/${tenant.admin.id}`;
    const patch = async (value: boolean) =>
      readBody(
        await send(app, "PATCH", path, { body: { email_verified: value }, ...admin }),
        updateUser,
        200,
      );
    expect((await patch(true)).data).toMatchObject({ email_verified: true });
    const stored = await storedUser(db, tenant.app.id, tenant.admin.email);
    expect(stored?.email_verified_at).toBeInstanceOf(Date);
    expect((await patch(false)).data).toMatchObject({
      email_verified: false,
      email_verified_at: null,
    });
  });
});
