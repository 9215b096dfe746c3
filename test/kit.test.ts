import type { Context } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../src/http/app-env";
import { absoluteUrl } from "../src/http/links";
import { sha256Hex } from "../src/lib/crypto";
import { newId, ulid } from "../src/lib/ids";

describe("hashes and ids", () => {
  it("sha256Hex is SHA-256 (FIPS 180-2 vectors, and a non-ASCII input as UTF-8)", async () => {
    expect(await sha256Hex("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(await sha256Hex("")).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    const utf8 = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode("é sk_live_x")),
    );
    expect(await sha256Hex("é sk_live_x")).toBe(Buffer.from(utf8).toString("hex"));
  });

  it("ulid() gives distinct, time-ordered ULIDs whose random part covers the alphabet", () => {
    const ids = Array.from({ length: 5000 }, () => ulid());
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Set(ids).size).toBe(ids.length);
    const timeParts = ids.map((id) => id.slice(0, 10));
    expect([...timeParts].sort()).toEqual(timeParts);
    // 80,000 random characters: every one of the 32 symbols turns up, none far above its share.
    const counts = new Map<string, number>();
    for (const id of ids) for (const ch of id.slice(10)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(32);
    for (const n of counts.values()) expect(Math.abs(n - 2500)).toBeLessThan(400);
    expect(newId("app")).toMatch(/^app_[0-9A-HJKMNP-TV-Z]{26}$/);
  });
});

describe("links", () => {
  it("absoluteUrl resolves every path as URL does, against PUBLIC_URL or the request's origin", () => {
    const bases = [
      "https://id.example.com",
      "https://id.example.com/",
      "https://ID.Example.com:443/heimdall/",
      "http://127.0.0.1:8787",
      undefined,
    ];
    const paths = [
      "/v1",
      "/",
      "/v1/apps/acme-corp/.well-known/jwks.json",
      "/v1/users/usr_01J0000000000000000000000/roles",
      "/v1//double",
      "//evil.example/x",
      "/v1/./x",
      "/v1/a/../b",
      "/v1/..",
      "/v1/ü ber?x=1#f",
      "/v1/%41",
      "relative/path",
    ];
    for (const base of bases) {
      const requestUrl = "http://Request.Example:8080/v1/anything?q=1";
      const c = {
        get: () => ({ config: { PUBLIC_URL: base } }),
        req: { url: requestUrl },
      } as unknown as Context<AppEnv>;
      const against = base ?? new URL(requestUrl).origin;
      for (const path of paths) {
        const expected = new URL(path, against.endsWith("/") ? against : `${against}/`).toString();
        expect({ base, path, url: absoluteUrl(c, path) }).toEqual({ base, path, url: expected });
      }
    }
  });
});
