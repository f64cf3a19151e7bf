// Promises kept by key for `ttlMs`: the calls within that time share one load and its answer. A load
// that fails is forgotten at once (the next call loads again), and never pushes out a newer entry of
// its key. At most `maxEntries` keys are kept, the oldest leaving first. Time is passed in.

export interface TimedPromiseCache<K, V> {
  /** The value loaded for `key` less than ttlMs before `now`, or `load()`'s. */
  get(key: K, now: number, load: () => Promise<V>): Promise<V>;
}

export function createTimedPromiseCache<K, V>(options: { ttlMs: number; maxEntries: number }): TimedPromiseCache<K, V> {
  const entries = new Map<K, { at: number; value: Promise<V> }>();
  return {
    get(key, now, load) {
      const entry = entries.get(key);
      if (entry && now - entry.at < options.ttlMs) return entry.value;
      const value = load();
      entries.delete(key);
      entries.set(key, { at: now, value });
      value.catch(() => {
        if (entries.get(key)?.value === value) entries.delete(key);
      });
      while (entries.size > options.maxEntries) entries.delete(entries.keys().next().value!);
      return value;
    },
  };
}
