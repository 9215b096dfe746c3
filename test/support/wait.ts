/**
 * Resolves as soon as `condition` holds, checking it every `everyMs`; fails with `message` if
 * it has not held within `timeoutMs`. For what a test cannot be told about directly (a row
 * written after the answer, a message on a socket, a key a store lets expire).
 *
 * @example
 * await until(() => received.some((m) => m.type === "Position"), { message: "a Position" });
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 3000, everyMs = 10, message = "the condition" } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${message} did not hold within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
