import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../src/app";
import type { DatabasePort } from "../src/ports";
import { openidConfiguration } from "../src/routes/discovery/discovery.routes";
import { createMemoryDatabase, createTestApp, testEnv } from "./support/app";
import { readBody } from "./support/http";
import { createTenant } from "./support/identity";

let db: DatabasePort;
let app: App;
const issuer = `${testEnv.PUBLIC_URL}/v1/apps/fleet`;

beforeAll(async () => {
  db = await createMemoryDatabase();
  app = createTestApp({ db }).app;
  await createTenant(app, "fleet");
});
afterAll(() => db.close());

describe("OpenID Connect discovery", () => {
  it("publishes a discovery document listing exactly what is supported", async () => {
    const doc = await readBody(
      await app.request(`${issuer}/.well-known/openid-configuration`),
      openidConfiguration,
      200,
    );
    expect(doc).toMatchObject({
      issuer,
      authorization_endpoint: `${issuer}/oauth/authorize`,
      token_endpoint: `${issuer}/tokens`,
      userinfo_endpoint: `${issuer}/oauth/userinfo`,
      code_challenge_methods_supported: ["S256"],
      response_types_supported: ["code"],
      scopes_supported: ["openid", "email", "profile"],
    });
    expect(doc.grant_types_supported).toContain("authorization_code");
  });
});
