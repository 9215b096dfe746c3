import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DatabasePort } from "../src/ports";
import { apiInfo } from "../src/routes/index/index.routes";
import { createMemoryDatabase, createTestApp } from "./support/app";
import { readBody } from "./support/http";

let db: DatabasePort;
beforeAll(async () => {
  db = await createMemoryDatabase();
});
afterAll(() => db.close());

describe("GET /v1", () => {
  it("gives name, version and absolute links from PUBLIC_URL", async () => {
    const { app } = createTestApp({ db, env: { PUBLIC_URL: "https://id.example.com" } });
    const res = await app.request("/v1");
    expect(res.status).toBe(200);
    expect(await readBody(res, apiInfo, 200)).toEqual({
      data: {
        name: "heimdall",
        version: expect.stringMatching(/^\d+\.\d+\.\d+/),
        api_version: "v1",
      },
      _links: {
        self: "https://id.example.com/v1",
        health: "https://id.example.com/v1/health",
        openapi: "https://id.example.com/v1/openapi.json",
        docs: "https://id.example.com/v1/docs",
      },
    });
  });
});
