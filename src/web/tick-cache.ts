import type { Clock } from '../common/clock.ts';

// One load per key per tick, however many browsers ask: requests arriving while a key loads wait
// for that same load (coalescing), and the loaded value is shared for `lifetimeMs` after it ended. A failed load
// is not kept, so the next request tries again. A slow load (a scan of a huge delivery) is kept
// longer: at least `costFactor` times as long as it took, so it never runs more than 1/costFactor of
// the time, however many watch.

export interface TickCache<K, V> {
  get(key: K): Promise<V>;
  /** The last value loaded for the key, however old (undefined before the first): never waits, never loads. */
  peek(key: K): { value: V; at: number } | undefined;
  /**
   * Starts a load when the key's value is stale or missing (none when one runs), without waiting:
   * a page shows what peek gives and, once its answer is sent, refreshes behind it.
   */
  refresh(key: K): void;
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
  /** A value is kept at least this many times its load's duration (default 20: ≤ 5 % of the time loading). */
  costFactor?: number;
}): TickCache<K, V> {
  const maxEntries = options.maxEntries ?? 1_000;
  const costFactor = options.costFactor ?? 20;
  type Entry = {
    at: number;
    lifetimeMs: number;
    loading: boolean;
    value: Promise<V>;
    settled?: { value: V; at: number } | undefined;
  };
  const entries = new Map<K, Entry>();
  let loads = 0;
  const fresh = (entry: Entry | undefined, now: number): boolean =>
    entry !== undefined && (entry.loading || now - entry.at < entry.lifetimeMs);
  const get = (key: K): Promise<V> => {
    const now = options.clock.now();
    const entry = entries.get(key);
    // A load in flight is always shared, however long it takes; a loaded value for its lifetime after it ended.
    if (entry && fresh(entry, now)) return entry.value;
    if (entries.size >= maxEntries) for (const [k, e] of entries) if (!fresh(e, now)) entries.delete(k);
    loads += 1;
    const value = options.load(key, entry?.settled);
    const next: Entry = { at: now, lifetimeMs: options.lifetimeMs, loading: true, value, settled: entry?.settled };
    entries.delete(key);
    entries.set(key, next);
    value.then(
      (loaded) => {
        const end = options.clock.now();
        next.settled = { value: loaded, at: now };
        next.loading = false;
        next.at = end;
        next.lifetimeMs = Math.max(options.lifetimeMs, (end - now) * costFactor);
      },
      () => {
        if (entries.get(key) === next) entries.delete(key);
      },
    );
    return value;
  };
  return {
    get,
    peek: (key) => entries.get(key)?.settled,
    refresh(key) {
      // A failed background load is not kept (the next refresh tries again); its error is the getter's to show.
      if (!fresh(entries.get(key), options.clock.now())) get(key).catch(() => undefined);
    },
    loads: () => loads,
    invalidate(key) {
      const entry = entries.get(key);
      // Keep what was loaded (a rate needs the previous value), but let the next request reload.
      if (entry && !entry.loading) entry.at = Number.NEGATIVE_INFINITY;
    },
  };
}
