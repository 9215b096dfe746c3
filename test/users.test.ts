import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { listUsers } from "../src/routes/users/users.routes";
import { adminHeaders, createMemoryDatabase, createTestApp, createTestClock } from "./support/app";
import { expectError, readBody } from "./support/http";
import { createTenant, PASSWORD, send } from "./support/identity";

let db: DatabasePort;
let app: App;
const clock = createTestClock();
beforeAll(async () => {
  db = await createMemoryDatabase();
  ({ app } = createTestApp({ db, clock }));
});
afterAll(() => db.close());

const admin = { headers: adminHeaders };

describe("users and roles", () => {
  it("keeps emails unique per app regardless of case, and checks the password policy", async () => {
    await createTenant(app, "hotel");
    await expectError(
      await send(app, "POST", "/v1/apps/hotel/users", {
        body: { email: "READER@hotel.test", password: PASSWORD },
        ...admin,
      }),
      409,
      "conflict",
    );
    const weak = await send(app, "POST", "/v1/apps/hotel/users", {
      body: { email: "weak@hotel.test", password: "short" },
      ...admin,
    });
    const body = await expectError(weak, 400, "validation_error");
    expect(body.error.details?.[0]?.field).toBe("json.password");
    await expectError(
      await send(app, "POST", "/v1/apps/hotel/users", {
        body: { email: "x@hotel.test", password: PASSWORD, role: "ghost" },
        ...admin,
      }),
      400,
      "validation_error",
    );
    // The same email in another app is another user.
    await createTenant(app, "india");
    const users = await readBody(
      await send(app, "GET", "/v1/apps/india/users?email=reader@hotel.test", admin),
      listUsers,
      200,
    );
    expect(users.data).toEqual([]);
  });
});
