// A value read from the database for /metrics, shared by every scrape. The first call waits for
// the first read; afterwards a scrape never waits: a value older than maxAgeMs is served while one
// refresh runs behind the scrape's response (SQLite's driver reads on the event loop, so the
// refresh starts on the next turn). maxAgeMs 0: every call waits for a read of its own, shared
// with the calls made while it runs (the gauges of one scrape).

export interface RefreshedValueOptions<T> {
  read: () => Promise<T>;
  maxAgeMs: number;
  now: () => number;
  onRefreshError: (error: unknown) => void;
}

export function refreshedValue<T>(options: RefreshedValueOptions<T>): () => Promise<T> {
  let latest: { at: number; value: T } | undefined;
  let inFlight: Promise<T> | undefined;
  let refreshScheduled = false;
  const refresh = () => {
    if (!inFlight) {
      const at = options.now();
      inFlight = options.read().then(
        (value) => {
          latest = { at, value };
          inFlight = undefined;
          return value;
        },
        (error: unknown) => {
          inFlight = undefined;
          throw error;
        },
      );
    }
    return inFlight;
  };
  return async () => {
    if (latest && options.now() - latest.at < options.maxAgeMs) return latest.value;
    if (!latest || options.maxAgeMs === 0) return refresh();
    if (!refreshScheduled) {
      refreshScheduled = true;
      setImmediate(() => {
        refresh()
          .catch(options.onRefreshError)
          .finally(() => (refreshScheduled = false));
      });
    }
    return latest.value;
  };
}
