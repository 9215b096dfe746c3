/**
 * Real servers the suites use when their URLs are set. Where one is absent the suite says so and
 * skips only the part that needs it; with `CI=true` every URL is required (global setup fails).
 */
export const services = {
  postgres: process.env.TEST_DATABASE_URL,
  redis: process.env.TEST_REDIS_URL,
} as const;

export const requiredInCi = ["TEST_DATABASE_URL", "TEST_REDIS_URL"] as const;

const announced = new Set<string>();

/** Logs once per process why a part of the suite does not run here. */
export function announceSkip(part: string, variable: string) {
  if (announced.has(part)) return;
  announced.add(part);
  console.warn(`[skip] ${part}: ${variable} is not set, so it does not run on this machine`);
}
