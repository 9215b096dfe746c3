import { createTtlCache } from "../lib/ttl-cache";
import type { Clock, Logger, RevocationStore } from "../ports";

/** The backstop: an entry is read again after this even when no change was signalled. */
export const RECORD_CACHE_TTL_MS = 60_000;
const MAX_CACHED = 10_000;
/**
 * Entries count as loaded this much earlier than they were, so a change recorded by a machine
 * whose clock is up to this far behind still invalidates them.
 */
const CLOCK_SKEW_MS = 2_000;
/**
 * How long a hit waits for the store before reading the database instead: a store round trip
 * takes milliseconds, and a store that hangs must not add its whole timeout to every request.
 */
const CHECK_BUDGET_MS = 250;

/**
 * A per-isolate cache of the records the token endpoints read on every request (an app by
 * name, a service credential by client id), kept correct by two rules:
 *
 * - in the process that changes a record, {@link changed} drops it before the change is answered;
 * - every other process sharing the revocation store checks each hit against the change marker
 *   `cache:<kind>:<id>` that {@link changed} records there (one round trip; hits of one entry
 *   while a check is under way share it), so a change is seen everywhere by every request that
 *   starts one store round trip after the change was answered. When the store cannot answer
 *   (or not within {@link CHECK_BUDGET_MS}), the hit is read again from the database instead.
 *
 * Without a shared store (the in-memory one in several processes) other processes see a change
 * within {@link RECORD_CACHE_TTL_MS}. Misses are not cached: a record created later is found at
 * once. Concurrent misses of one key make one query.
 */
export function createRecordCache<V>(deps: {
  kind: string;
  idOf: (value: V) => string;
  clock: Clock;
  revocations: RevocationStore;
  logger: Logger;
}) {
  const cache = createTtlCache<V | undefined>({
    ttlMs: RECORD_CACHE_TTL_MS,
    maxEntries: MAX_CACHED,
    now: () => deps.clock.now().getTime(),
  });
  const marker = (id: string) => `cache:${deps.kind}:${id}`;

  // Hits of one entry while its check is under way share that check's answer.
  const checks = new Map<string, Promise<boolean>>();

  function unchangedSince(value: V, loadedAt: number): Promise<boolean> {
    const subject = marker(deps.idOf(value));
    const key = `${subject}@${loadedAt}`;
    let check = checks.get(key);
    if (!check) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const answer = deps.revocations.isRevoked({
        tokenId: subject,
        issuedAt: new Date(loadedAt - CLOCK_SKEW_MS),
        subjects: [subject],
      });
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_BUDGET_MS} ms`)),
          CHECK_BUDGET_MS,
        );
      });
      check = Promise.race([answer, late])
        .then(
          (changed) => !changed,
          (error: unknown) => {
            deps.logger.warn(`${deps.kind} cache check failed; reading the database`, { error });
            return false;
          },
        )
        .finally(() => {
          clearTimeout(timer);
          checks.delete(key);
        });
      // A late failure is already answered for: the hit went to the database.
      answer.catch(() => {});
      checks.set(key, check);
    }
    return check;
  }

  return {
    /** The record of `key`, from cache when no change was signalled since it was read. */
    async get(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
      const { value, loadedAt } = await cache.getWithTime(key, load);
      if (value === undefined) {
        cache.forgetKey(key, loadedAt);
        return undefined;
      }
      if (await unchangedSince(value, loadedAt)) return value;
      cache.forgetKey(key, loadedAt);
      return (await cache.getWithTime(key, load)).value;
    },

    /**
     * Signals a committed change of the record `id`: dropped here at once, and marked in the
     * revocation store for the other processes. Call after the change's transaction, before
     * answering. A store that cannot be written is logged, not thrown: the change is made.
     */
    async changed(id: string) {
      cache.forget((value) => value === undefined || deps.idOf(value) === id);
      const at = deps.clock.now();
      try {
        await deps.revocations.revokeIssuedBefore(
          marker(id),
          at,
          new Date(at.getTime() + RECORD_CACHE_TTL_MS + CLOCK_SKEW_MS + 60_000),
        );
      } catch (error) {
        // The change is committed; other processes then see it within the TTL.
        deps.logger.warn(`${deps.kind} change could not be signalled to other processes`, {
          error,
        });
      }
    },
  };
}

export type RecordCache<V> = ReturnType<typeof createRecordCache<V>>;
