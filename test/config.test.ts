import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../src/config";

describe("parseConfig", () => {
  it("gives the documented defaults for an empty environment", () => {
    expect(parseConfig({})).toMatchObject({
      APP_ENV: "development",
      LOG_LEVEL: "info",
      CORS_ORIGINS: ["*"],
      DATA_DIR: "./.heimdall",
      PORT: 3000,
      MAX_BODY_BYTES: 1_048_576,
    });
  });

  it("reads and converts values; empty strings count as unset", () => {
    const config = parseConfig({
      APP_ENV: "production",
      ADMIN_API_KEY: "a".repeat(32),
      KEY_ENCRYPTION_SECRET: "k".repeat(32),
      PORT: "8080",
      CORS_ORIGINS: "https://a.example.com, https://b.example.com",
      PUBLIC_URL: "",
      UNRELATED: "ignored",
    });
    expect(config.APP_ENV).toBe("production");
    expect(config.PORT).toBe(8080);
    expect(config.CORS_ORIGINS).toEqual(["https://a.example.com", "https://b.example.com"]);
    expect(config.PUBLIC_URL).toBeUndefined();
  });

  it.each([
    [{ APP_ENV: "staging" }, "APP_ENV"],
    [{ PORT: "eighty" }, "PORT"],
    [{ LOG_LEVEL: "verbose" }, "LOG_LEVEL"],
    [{ PUBLIC_URL: "not a url" }, "PUBLIC_URL"],
    [{ CORS_ORIGINS: "https://ok.example.com,ftp://bad" }, "CORS_ORIGINS"],
    [{ DATABASE_URL: "mysql://localhost/db" }, "DATABASE_URL"],
    [{ UPSTASH_REDIS_REST_URL: "https://x.upstash.io" }, "UPSTASH_REDIS_REST_TOKEN"],
    [{ APP_ENV: "production", KEY_ENCRYPTION_SECRET: "k".repeat(32) }, "ADMIN_API_KEY"],
    [{ APP_ENV: "production", ADMIN_API_KEY: "a".repeat(32) }, "KEY_ENCRYPTION_SECRET"],
    [{ ADMIN_API_KEY: "short" }, "ADMIN_API_KEY"],
  ])("fails with a message naming the bad variable: %o", (env, variable) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(new RegExp(`^Invalid configuration: ${variable}`));
  });
});
