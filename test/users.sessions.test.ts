import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { endOtherSessions, listSessions } from "../src/routes/users/users.routes";
import { createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readBody } from "./support/http";
import { bearer, createTenant, send, signIn } from "./support/identity";

let db: DatabasePort;
let app: App;
const clock = createTestClock();

beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app } = createTestApp({ db, clock }));
});
afterAll(() => db.close());

describe("sessions", () => {
  it("lists a user's sessions, ends one, then all but the current one", async () => {
    const user = await createTenant(app, "romeo");
    const second = await signIn(app, "romeo", user.reader.email);
    const third = await signIn(app, "romeo", user.reader.email);
    const listed = await readBody(
      await send(app, "GET", "/v1/users/me/sessions", { headers: bearer(third.accessToken) }),
      listSessions,
      200,
    );
    expect(listed.data).toHaveLength(3);
    expect(listed.data.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    expect(listed.data[0]).toMatchObject({ id: expect.stringMatching(/^ses_/), location: null });

    const secondId = listed.data.find((s: { id: string; current: boolean }) => !s.current)!.id;
    // End the session of `second`, whichever of the two non-current ones it is.
    const ended = await send(app, "DELETE", `/v1/users/me/sessions/${secondId}`, {
      headers: bearer(third.accessToken),
    });
    expect(ended.status).toBe(204);
    const refresh = (token: string) =>
      send(app, "POST", "/v1/apps/romeo/tokens/refresh", { body: { refresh_token: token } });
    const results = await Promise.all([
      refresh(user.reader.refreshToken),
      refresh(second.refreshToken),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);

    const others = await send(app, "DELETE", "/v1/users/me/sessions", {
      headers: bearer(third.accessToken),
    });
    expect((await readBody(others, endOtherSessions, 200)).data.ended).toBe(1);
    const left = await readBody(
      await send(app, "GET", "/v1/users/me/sessions", { headers: bearer(third.accessToken) }),
      listSessions,
      200,
    );
    expect(left.data.map((s: { current: boolean }) => s.current)).toEqual([true]);
    await expectError(
      await send(app, "DELETE", `/v1/users/me/sessions/${secondId}`, {
        headers: bearer(third.accessToken),
      }),
      404,
      "not_found",
    );
  });
});
