import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runScheduledJobs, type ScheduledJob } from "../functions";
import type { DatabasePort } from "../src/ports";
import { createMemoryDatabase, createTestApp } from "./support/app";

describe("scheduled jobs", () => {
  let db: DatabasePort;
  beforeAll(async () => {
    db = await createMemoryDatabase();
  });
  afterAll(() => db.close());

  it("runs every job, and one failing job neither stops the others nor goes unlogged", async () => {
    const { ports, services, logs } = createTestApp({ db });
    const ran: string[] = [];
    const jobs: ScheduledJob[] = [
      { name: "first", run: async () => void ran.push("first") },
      {
        name: "broken",
        run: async () => {
          throw new Error("boom");
        },
      },
      { name: "last", run: async () => void ran.push("last") },
    ];
    expect(await runScheduledJobs(services, ports.db, jobs)).toBe(1);
    expect(ran.sort()).toEqual(["first", "last"]);
    expect(logs.find((e) => e.message === "scheduled job failed")).toMatchObject({
      level: "error",
      job: "broken",
    });
    expect(logs.filter((e) => e.message === "scheduled job done").map((e) => e.job)).toEqual(
      expect.arrayContaining(["first", "last"]),
    );
  });
});
