/**
 * lru-cache's `LRUCache` as the Worker bundles it (wrangler.toml `[alias]`), for its one user
 * there, graphql-yoga's parse and validation caches: at most `max` entries, the least recently
 * used dropped first, each entry forgotten `ttl` ms after it was set. The package (16 KiB
 * minified) also carries sizes, fetchers, disposers and stale reads the Worker never uses.
 */
export class LRUCache<K, V> {
  readonly #max: number;
  readonly #ttl: number;
  readonly #entries = new Map<K, { value: V; expires: number }>();

  constructor({ max, ttl = 0 }: { max: number; ttl?: number }) {
    if (!(max > 0)) throw new TypeError("LRUCache needs a positive max");
    this.#max = max;
    this.#ttl = ttl;
  }

  get size() {
    return this.#entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expires <= Date.now()) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  has(key: K): boolean {
    const entry = this.#entries.get(key);
    return entry !== undefined && entry.expires > Date.now();
  }

  set(key: K, value: V): this {
    this.#entries.delete(key);
    this.#entries.set(key, { value, expires: this.#ttl > 0 ? Date.now() + this.#ttl : Infinity });
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    return this;
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}
