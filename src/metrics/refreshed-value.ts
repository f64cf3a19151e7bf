// A value read from the database for /metrics, shared by every scrape. The first call waits for
// the first read; afterwards a scrape never waits: a value older than maxAgeMs is served while one
// refresh runs behind the scrape's response (SQLite's driver reads on the event loop, so the
// refresh starts on the next turn). maxAgeMs 0: every call waits for a read of its own, shared
// with the calls made while it runs (the gauges of one scrape).
//
// A value older than maxServedAgeMs is not served: while the database does not answer (a read
// since that value failed or still hangs) a call rejects at once with UnavailableValue (the gauge
// shows nothing), where it used to serve a queue depth of an hour ago as if it were now; when it is
// old only because nobody asked, the call waits for a read, as the first one does.

export interface RefreshedValueOptions<T> {
  read: () => Promise<T>;
  maxAgeMs: number;
  /** The oldest value served while the reads since it fail or hang (default: any age). */
  maxServedAgeMs?: number;
  now: () => number;
  /** Called once per failed read, whoever waited for it. */
  onRefreshError: (error: unknown) => void;
}

/** No value to serve: the read failed and none is kept, or the one kept is older than maxServedAgeMs. */
export class UnavailableValue extends Error {
  constructor(message: string, options?: { cause: unknown }) {
    super(message, options);
    this.name = 'UnavailableValue';
  }
}

export interface RefreshedValue<T> {
  (): Promise<T>;
  /** Milliseconds since the start of the last successful read (since this was made, before any). */
  ageMs(): number;
}

export function refreshedValue<T>(options: RefreshedValueOptions<T>): RefreshedValue<T> {
  const createdAt = options.now();
  let latest: { at: number; value: T } | undefined;
  let inFlight: Promise<T> | undefined;
  let lastAttemptAt: number | undefined;
  let refreshScheduled = false;
  const refresh = () => {
    if (!inFlight) {
      const at = options.now();
      lastAttemptAt = at;
      inFlight = options.read().then(
        (value) => {
          latest = { at, value };
          inFlight = undefined;
          return value;
        },
        (error: unknown) => {
          inFlight = undefined;
          options.onRefreshError(error);
          throw new UnavailableValue('the read from the database failed', { cause: error });
        },
      );
    }
    return inFlight;
  };
  const refreshBehind = () => {
    if (refreshScheduled) return;
    refreshScheduled = true;
    setImmediate(() => {
      refresh()
        .catch(() => {})
        .finally(() => (refreshScheduled = false));
    });
  };
  const ageMs = () => options.now() - (latest?.at ?? createdAt);
  const value = async () => {
    if (latest && ageMs() < options.maxAgeMs) return latest.value;
    const tooOld = options.maxServedAgeMs !== undefined && ageMs() > options.maxServedAgeMs;
    // A read since the last value (or the first read) that failed or still runs: the database does not answer.
    const unanswered = lastAttemptAt !== undefined && (latest === undefined || lastAttemptAt > latest.at);
    if (tooOld && unanswered) {
      refreshBehind();
      throw new UnavailableValue(`no value read from the database for ${Math.round(ageMs() / 1000)} s`);
    }
    if (!latest || options.maxAgeMs === 0 || tooOld) return refresh();
    refreshBehind();
    return latest.value;
  };
  return Object.assign(value, { ageMs });
}
