// Counters of one MTA, and the sending rate over a sliding window of whole seconds.

export interface MtaStats {
  sent: number;
  deferred: number;
  failed: number;
  released: number;
  /** SMTP transactions (or builds) in progress. */
  inFlight: number;
  /** Claimed messages waiting: for DNS, for a connection, or in a connection's queue. */
  queued: number;
  connectionsOpen: number;
  /** Paths (source address × MX host × address) held in memory: those with messages or connections. */
  paths: number;
  /** Messages sent per second over the last `windowSeconds` (or since the first one, if later). */
  msgsPerSec: number;
}

export interface RateMeter {
  add(now: number): void;
  rate(now: number): number;
}

export function createRateMeter(windowSeconds = 10): RateMeter {
  const buckets = new Array<number>(windowSeconds).fill(0);
  let lastSecond = -1;
  let firstSecond = -1;
  const advance = (second: number) => {
    if (lastSecond < 0) {
      lastSecond = second;
      return;
    }
    for (let s = lastSecond + 1; s <= Math.min(second, lastSecond + windowSeconds); s++) buckets[s % windowSeconds] = 0;
    if (second > lastSecond) lastSecond = second;
  };
  return {
    add(now) {
      const second = Math.floor(now / 1_000);
      if (firstSecond < 0) firstSecond = second;
      advance(second);
      buckets[second % windowSeconds]! += 1;
    },
    rate(now) {
      if (firstSecond < 0) return 0;
      const second = Math.floor(now / 1_000);
      advance(second);
      const total = buckets.reduce((sum, count) => sum + count, 0);
      const span = Math.min(windowSeconds, Math.max(1, second - firstSecond + 1));
      return total / span;
    },
  };
}
