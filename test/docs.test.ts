import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { readJson } from "./support/http";

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

describe("OpenAPI and docs", () => {
  it("serves an OpenAPI 3.1 document generated from the routes", async () => {
    const { app } = createTestApp({ db });
    const res = await app.request("http://localhost/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = await readJson(res);
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/health", "/v1/health", "/v1"]),
    );
    expect(doc.components.schemas.Health.properties.checks).toBeDefined();
    expect(doc.paths["/v1/health"].get.responses).toHaveProperty("503");
  });

  it("serves interactive docs pointing at the document", async () => {
    const { app } = createTestApp({ db });
    const res = await app.request("/v1/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(await res.text()).toContain("/v1/openapi.json");
  });
});
