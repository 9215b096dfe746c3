/**
 * A per-isolate cache of lookups that expire after `ttlMs` (misses are cached too, so an unknown
 * key costs one read per period). Concurrent misses of one key share one load; a load that fails
 * is not kept. Bounded: past `maxEntries` it starts over.
 */
export function createTtlCache<V>(options: {
  ttlMs: number;
  maxEntries: number;
  now: () => number;
}) {
  interface Entry {
    value: Promise<V>;
    /** When the load started: the entry shows the source as of then at the earliest. */
    loadedAt: number;
    settled?: { value: V };
  }
  const entries = new Map<string, Entry>();

  function entry(key: string, load: () => Promise<V>): Entry {
    const now = options.now();
    const cached = entries.get(key);
    if (cached && now - cached.loadedAt <= options.ttlMs) return cached;
    if (entries.size >= options.maxEntries) entries.clear();
    const fresh: Entry = { value: load(), loadedAt: now };
    entries.set(key, fresh);
    fresh.value.then(
      (value) => {
        fresh.settled = { value };
      },
      () => {
        if (entries.get(key) === fresh) entries.delete(key);
      },
    );
    return fresh;
  }

  return {
    get(key: string, load: () => Promise<V>): Promise<V> {
      return entry(key, load).value;
    },
    /** {@link get}, with the time the value's load started. */
    async getWithTime(
      key: string,
      load: () => Promise<V>,
    ): Promise<{ value: V; loadedAt: number }> {
      const { value, loadedAt } = entry(key, load);
      return { value: await value, loadedAt };
    },
    /** Drops every entry whose value matches, and every load still under way. */
    forget(matches: (value: V) => boolean) {
      for (const [key, cached] of entries) {
        if (!cached.settled || matches(cached.settled.value)) entries.delete(key);
      }
    },
    /** Drops the entry of `key`, unless it is another load than `loadedAt`'s. */
    forgetKey(key: string, loadedAt?: number) {
      if (loadedAt === undefined || entries.get(key)?.loadedAt === loadedAt) entries.delete(key);
    },
  };
}
