import { describe, expect, it } from "vitest";
import { createPasswordHasher, DUMMY_HASH, dummyHash } from "../src/adapters/argon2-hasher";
import { nodeArgon2, nodeWasmArgon2 } from "../src/adapters/node/argon2";

// Low cost keeps the suite fast; one case below runs the defaults.
const fast = { memoryCost: 1024, timeCost: 1 };

// From the reference implementation (phc-winner-argon2's CLI), e.g.
// printf '%s' 'pässwörd 🔑' | argon2 saltsaltsaltsalt -id -t 1 -k 1024 -p 1 -l 32 -e
const reference = {
  ascii:
    "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$RMnlO2yJjUzUJ1vqMJdgdgriWoTT+H4XFqGo/gwMfPA",
  unicode:
    "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$4gI3TaKbV5nlYEpmf+5ffdlUTMs8ESNiJUUsGD41E4I",
  unicodeDefaults:
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$9FmN9BaVXInxJzVftkbFkW8JGVZjc+kEP7R4gSCzIKM",
};

/** Node's native engine and the WebAssembly one Workers run: the same answers from both. */
describe.each([
  ["native (Node)", nodeArgon2],
  ["WebAssembly (Workers)", nodeWasmArgon2],
] as const)("password hasher, %s engine", (_name, engine) => {
  const hasher = createPasswordHasher(engine, fast);

  it("verifies the password it hashed and rejects another", async () => {
    const stored = await hasher.hash("correct horse battery staple");
    expect(await hasher.verify(stored, "correct horse battery staple")).toEqual({
      valid: true,
      needsRehash: false,
    });
    expect(await hasher.verify(stored, "correct horse battery stapler")).toEqual({
      valid: false,
      needsRehash: false,
    });
    expect(await hasher.verify(stored, "")).toEqual({ valid: false, needsRehash: false });
  });

  it("salts every hash", async () => {
    const [a, b] = await Promise.all([hasher.hash("same"), hasher.hash("same")]);
    expect(a).not.toBe(b);
    expect((await hasher.verify(a!, "same")).valid).toBe(true);
    expect((await hasher.verify(b!, "same")).valid).toBe(true);
  });

  it("stores the algorithm and its parameters in a PHC string", async () => {
    const stored = await createPasswordHasher(engine, { memoryCost: 2048, timeCost: 3 }).hash("pw");
    expect(stored).toMatch(
      /^\$argon2id\$v=19\$m=2048,t=3,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/,
    );
  });

  it("hashes at OWASP's argon2id minimum by default, and asks to rehash weaker hashes", async () => {
    const strong = createPasswordHasher(engine);
    const stored = await strong.hash("pw");
    expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await strong.verify(stored, "pw")).toEqual({ valid: true, needsRehash: false });

    const weak = await hasher.hash("pw");
    expect(await strong.verify(weak, "pw")).toEqual({ valid: true, needsRehash: true });
    expect(await strong.verify(weak, "pw2")).toEqual({ valid: false, needsRehash: false });
    expect(await hasher.verify(stored, "pw")).toEqual({ valid: true, needsRehash: true });
  });

  it("matches the reference implementation, non-ASCII passwords included", async () => {
    expect((await hasher.verify(reference.ascii, "correct horse")).valid).toBe(true);
    expect((await hasher.verify(reference.unicode, "pässwörd 🔑")).valid).toBe(true);
    expect(
      await createPasswordHasher(engine).verify(reference.unicodeDefaults, "pässwörd 🔑"),
    ).toEqual({
      valid: true,
      needsRehash: false,
    });
    // @phi-ag/argon2 alone hashes only the first `length` UTF-8 bytes: these used to collide.
    expect((await hasher.verify(reference.unicode, "pässwörd 🔑x")).valid).toBe(false);
    const e = await hasher.hash("é");
    expect((await hasher.verify(e, "è")).valid).toBe(false);
    expect((await hasher.verify(await hasher.hash("ééééé"), "éééxx")).valid).toBe(false);
  });

  it("treats malformed stored strings as invalid without throwing", async () => {
    const good = await hasher.hash("pw");
    const malformed = [
      "",
      "pw",
      "$2b$10$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
      good.replace("argon2id", "argon2i"),
      good.replace("v=19", "v=16"),
      good.replace("m=1024", "m=abc"),
      good.replace("m=1024", "m=0"),
      good.replace("t=1", "t=0"),
      good.replace("p=1", "p=0"),
      good.replace(/\$[^$]+$/, "$"),
      good.replace(/\$[^$]+$/, "$A"), // base64 that cannot decode
      good.replace(/\$[^$]+\$([^$]+)$/, "$c2FsdA$$$1"), // 4-byte salt
      `${good}$`,
      ` ${good}`,
      DUMMY_HASH.replace("m=19456", "m=2000000000"),
    ];
    for (const stored of malformed) {
      expect(await hasher.verify(stored, "pw"), stored).toEqual({
        valid: false,
        needsRehash: false,
      });
    }
  });

  it("offers a dummy hash that costs a verification and never matches", async () => {
    expect(DUMMY_HASH).toBe(dummyHash());
    expect(DUMMY_HASH).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await hasher.verify(dummyHash(fast), "")).toEqual({ valid: false, needsRehash: false });
    expect(dummyHash(fast)).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
  });
});

describe("password engines", () => {
  it("verify each other's hashes, so stored hashes survive a move between Node and Workers", async () => {
    const native = createPasswordHasher(nodeArgon2, fast);
    const wasm = createPasswordHasher(nodeWasmArgon2, fast);
    for (const password of ["correct horse", "pässwörd 🔑", ""]) {
      expect((await wasm.verify(await native.hash(password), password)).valid).toBe(true);
      expect((await native.verify(await wasm.hash(password), password)).valid).toBe(true);
      expect((await native.verify(await wasm.hash(password), `${password}x`)).valid).toBe(false);
    }
  });

  it("hash natively off the event loop: timers keep firing during a full-cost hash", async () => {
    const ticksDuring = async (engine: typeof nodeArgon2) => {
      const hasher = createPasswordHasher(engine);
      await hasher.hash("warm up");
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      try {
        await Promise.all([hasher.hash("a"), hasher.hash("b"), hasher.hash("c")]);
      } finally {
        clearInterval(timer);
      }
      return ticks;
    };
    // Three 19 MiB hashes take tens of milliseconds; natively the loop runs meanwhile, while
    // WebAssembly holds it for every hash (a timer can fire only between them).
    expect(await ticksDuring(nodeArgon2)).toBeGreaterThan(2);
    expect(await ticksDuring(nodeWasmArgon2)).toBeLessThanOrEqual(3);
  });
});
