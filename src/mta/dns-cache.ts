import type { Clock } from '../common/clock.ts';

// The MX resolver's answer cache. Each answer is kept for the time its lookup gives (its TTL,
// clamped by the resolver); a lookup of a name whose time has run out is shared by every caller
// asking meanwhile. When the DNS fails (SERVFAIL, timeout) after a good answer, that answer stands
// in for a bounded time (RFC 8767, serve-stale): a broken name server for an hour would otherwise
// defer every message to the domain, although its MX hosts take mail as before. A hit is one Map
// lookup and one comparison: the cache is asked for every message.

/** What a lookup found and how long to keep it. */
export interface CacheLoad<T> {
  value: T;
  ttlSeconds: number;
  /** `good`: an answer that may stand in when DNS later fails; `negative`: DNS answered that
   *  there is nothing (never served stale); `error`: DNS did not answer (`reason` says how). */
  outcome: 'good' | 'negative' | 'error';
  reason?: string;
}

/** A name answered from its last good answer while DNS fails. */
export interface StaleAnswer {
  name: string;
  /** The DNS failure, e.g. "MX lookup for example.com failed: ESERVFAIL". */
  reason: string;
  /** When the last good answer was first served in place of a failing lookup. */
  since: number;
  /** After this, the failure is served instead. */
  until: number;
}

export type StaleEvent =
  | ({ state: 'serving' } & StaleAnswer)
  /** `expired`: served for as long as allowed, DNS still fails; `recovered`: DNS answered again. */
  | { state: 'expired' | 'recovered'; name: string; since: number; reason: string };

export interface DnsCacheOptions<T> {
  clock: Clock;
  /** How long past its TTL a good answer may stand in for a failing DNS (0: never). */
  staleMaxSeconds: number;
  /** While an answer stands in, DNS is asked again this often (in the background). */
  staleRetrySeconds: number;
  onStale?: (event: StaleEvent) => void;
  /** The failure to serve once a stale answer, standing in since `since`, has run out. */
  lapsed?: (failure: T, since: number) => T;
}

export interface DnsCache<T> {
  get(name: string, load: () => Promise<CacheLoad<T>>): Promise<T>;
  size(): number;
  stale(): StaleAnswer[];
}

interface Entry<T> {
  value: Promise<T>;
  /** Infinity while a lookup is in flight: callers share it (or the stale answer) meanwhile. */
  expiresAt: number;
  good?: { value: T; staleUntil: number };
  stale?: { reason: string; since: number };
  /** Since when a stale answer had stood in, while DNS still fails after it ran out. */
  lapsedSince?: number;
}

/** Below this many entries the cache is never swept. */
const minSweepSize = 1_024;

export function createDnsCache<T>(options: DnsCacheOptions<T>): DnsCache<T> {
  const { clock } = options;
  const entries = new Map<string, Entry<T>>();
  let sweepAt = minSweepSize;

  function settle(name: string, entry: Entry<T>, loaded: CacheLoad<T>): T {
    const now = clock.now();
    const { good, stale } = entry;
    if (loaded.outcome === 'error' && good && good.staleUntil > now) {
      const reason = loaded.reason ?? 'DNS lookup failed';
      entry.stale = { reason, since: stale?.since ?? now };
      if (!stale) options.onStale?.({ state: 'serving', name, reason, since: now, until: good.staleUntil });
      entry.value = Promise.resolve(good.value);
      entry.expiresAt = Math.min(now + options.staleRetrySeconds * 1_000, good.staleUntil);
      return good.value;
    }
    if (stale)
      options.onStale?.({
        state: loaded.outcome === 'error' ? 'expired' : 'recovered',
        name,
        since: stale.since,
        reason: loaded.outcome === 'error' ? (loaded.reason ?? stale.reason) : stale.reason,
      });
    entry.stale = undefined;
    // A failure after a stale answer ran out says so, as long as DNS keeps failing: the reply
    // the deferred messages carry (and `herald doctor` quotes) tells why they were sent until now.
    entry.lapsedSince = loaded.outcome === 'error' ? (stale?.since ?? entry.lapsedSince) : undefined;
    const value =
      entry.lapsedSince !== undefined && options.lapsed
        ? options.lapsed(loaded.value, entry.lapsedSince)
        : loaded.value;
    entry.value = Promise.resolve(value);
    entry.expiresAt = now + loaded.ttlSeconds * 1_000;
    entry.good =
      loaded.outcome === 'good'
        ? { value: loaded.value, staleUntil: entry.expiresAt + options.staleMaxSeconds * 1_000 }
        : undefined;
    return value;
  }

  return {
    get(name, load) {
      const now = clock.now();
      const hit = entries.get(name);
      if (hit && hit.expiresAt > now) return hit.value;
      // An expired answer is replaced only if its name comes again: every domain ever sent to
      // stayed (14 MiB after 20,000 domains of one wildcard zone). Swept whenever the cache doubles.
      if (!hit && entries.size >= sweepAt) {
        for (const [key, entry] of entries) if (entry.expiresAt <= now) entries.delete(key);
        sweepAt = Math.max(minSweepSize, entries.size * 2);
      }
      const entry: Entry<T> = hit ?? { value: Promise.resolve() as Promise<T>, expiresAt: 0 };
      if (!hit) entries.set(name, entry);
      // Already standing in for a failing DNS: answered at once, not after another timeout, but
      // only until its bound; past it, callers wait for a lookup of their own.
      const servesStale = entry.stale !== undefined && entry.good !== undefined && entry.good.staleUntil > now;
      entry.expiresAt = servesStale ? entry.good!.staleUntil : Number.POSITIVE_INFINITY;
      const lookup = load().then(
        (loaded) => settle(name, entry, loaded),
        (error: unknown) => {
          entries.delete(name);
          throw error;
        },
      );
      if (servesStale) {
        lookup.catch(() => undefined);
        return entry.value;
      }
      entry.value = lookup;
      return lookup;
    },
    size: () => entries.size,
    stale() {
      const now = clock.now();
      const answers: StaleAnswer[] = [];
      for (const [name, entry] of entries)
        if (entry.stale && entry.good && entry.good.staleUntil > now)
          answers.push({ name, ...entry.stale, until: entry.good.staleUntil });
      return answers;
    },
  };
}
