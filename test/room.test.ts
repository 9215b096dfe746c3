import { describe, expect, it } from "vitest";
import { answer } from "../party/room";

describe("live room protocol", () => {
  it("answers Ping with Pong", () => {
    expect(answer(JSON.stringify({ type: "Ping" }))).toEqual({ type: "Pong" });
  });

  it("answers non-JSON with invalid_message", () => {
    expect(answer("not json")).toMatchObject({ type: "Error", code: "invalid_message" });
  });

  it("streams nothing to an unauthenticated socket: Subscribe gets an error", () => {
    expect(answer(JSON.stringify({ type: "Subscribe", channel: "gps" }))).toMatchObject({
      type: "Error",
      code: "unauthenticated",
    });
  });
});
