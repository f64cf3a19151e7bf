import type { Clock } from '../common/clock.ts';

// One load per key per tick, however many browsers ask: requests arriving while a key loads wait
// for that same load (coalescing), and the loaded value is shared for `lifetimeMs` after it ended. A failed load
// is not kept, so the next request tries again.

export interface TickCache<K, V> {
  get(key: K): Promise<V>;
  /** How many loads ran (a test seam and a figure for the bench). */
  loads(): number;
  /** Forgets the key's value: the next request loads afresh (after an action changed it). */
  invalidate(key: K): void;
}

export function createTickCache<K, V>(options: {
  lifetimeMs: number;
  clock: Clock;
  /** `previous` is the last value loaded for the key (a rate between two ticks), if any. */
  load(key: K, previous: { value: V; at: number } | undefined): Promise<V>;
  maxEntries?: number;
}): TickCache<K, V> {
  const maxEntries = options.maxEntries ?? 1_000;
  type Entry = { at: number; loading: boolean; value: Promise<V>; settled?: { value: V; at: number } };
  const entries = new Map<K, Entry>();
  let loads = 0;
  return {
    get(key) {
      const now = options.clock.now();
      const entry = entries.get(key);
      // A load in flight is always shared, however long it takes; a loaded value for one tick after it ended.
      if (entry && (entry.loading || now - entry.at < options.lifetimeMs)) return entry.value;
      if (entries.size >= maxEntries)
        for (const [k, e] of entries) if (!e.loading && now - e.at >= options.lifetimeMs) entries.delete(k);
      loads += 1;
      const value = options.load(key, entry?.settled);
      const next: Entry = { at: now, loading: true, value };
      entries.delete(key);
      entries.set(key, next);
      value.then(
        (loaded) => {
          next.settled = { value: loaded, at: now };
          next.loading = false;
          next.at = options.clock.now();
        },
        () => {
          if (entries.get(key) === next) entries.delete(key);
        },
      );
      return value;
    },
    loads: () => loads,
    invalidate(key) {
      const entry = entries.get(key);
      // Keep what was loaded (a rate needs the previous value), but let the next request reload.
      if (entry && !entry.loading) entry.at = Number.NEGATIVE_INFINITY;
    },
  };
}
