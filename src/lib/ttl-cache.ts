/**
 * A per-isolate cache of lookups that expire after `ttlMs` (misses are cached too, so an unknown
 * key costs one read per period). Bounded: past `maxEntries` it starts over.
 */
export function createTtlCache<V>(options: {
  ttlMs: number;
  maxEntries: number;
  now: () => number;
}) {
  const entries = new Map<string, { value: V; loadedAt: number }>();
  return {
    async get(key: string, load: () => Promise<V>): Promise<V> {
      const now = options.now();
      const cached = entries.get(key);
      if (cached && now - cached.loadedAt <= options.ttlMs) return cached.value;
      const value = await load();
      if (entries.size >= options.maxEntries) entries.clear();
      entries.set(key, { value, loadedAt: now });
      return value;
    },
    /** Drops every entry whose value matches. */
    forget(matches: (value: V) => boolean) {
      for (const [key, entry] of entries) if (matches(entry.value)) entries.delete(key);
    },
  };
}
