import { randomId } from '../common/ids.ts';

// The throttle engine: connection leases per path and smoothed message rates, behind one
// interface with two backends (memory-throttle.ts in one process, redis-throttle.ts shared by
// several MTA processes). The arithmetic below is pure and shared by both backends (the Redis
// Lua scripts mirror it line for line).

export interface RateLimit {
  /** Messages allowed per period (maxMessagesPerHour with the default one-hour period). */
  perPeriod: number;
  periodMs: number;
  /** Messages that may go at once after a quiet spell: small, so the period is spread evenly. */
  burst: number;
}

export type ConnectionGrant =
  | { granted: true; leaseId: string; open: number }
  | { granted: false; open: number; retryInMs: number };

export interface MessageGrant {
  /** How many of the requested permits were granted (0..count). */
  granted: number;
  /** When granted < count: how long until the next permit can be granted. */
  retryInMs: number;
}

export interface ThrottleSnapshot {
  /** Open (unexpired) connection leases per connection key. */
  connections: Record<string, number>;
  /** Theoretical arrival time per rate key: how far ahead of now the rate is booked. */
  rates: Record<string, { bookedUntil: number }>;
}

export interface ThrottleBackend {
  readonly kind: 'memory' | 'redis';
  /** Opens a lease on one of `limit` connection slots; the lease expires after leaseMs unless renewed. */
  acquireConnection(key: string, limit: number, leaseMs: number, now: number): Promise<ConnectionGrant>;
  /** Extends a lease (long sessions); false when it had already expired or was released. */
  renewConnection(key: string, leaseId: string, leaseMs: number, now: number): Promise<boolean>;
  releaseConnection(key: string, leaseId: string): Promise<void>;
  /** Takes up to `count` permits from the smoothed rate in one step (one round trip for Redis). */
  acquireMessages(key: string, limit: RateLimit, count: number, now: number): Promise<MessageGrant>;
  snapshot(now: number): Promise<ThrottleSnapshot>;
  close(): Promise<void>;
}

export const hourMs = 3_600_000;

/**
 * Default burst: 1/360 of the period's quota (ten seconds' worth of an hourly rate), at least 1.
 * With 20,000/h that is 56 messages at once, then one every 180 ms: the whole hour can never go
 * out in its first minute, and the excess over any window is at most `burst` (0.3 % of the
 * quota). It is a fraction of the quota, not a duration, so a scaled-down period keeps it.
 */
export function defaultBurst(perPeriod: number): number {
  return Math.max(1, Math.ceil(perPeriod / 360));
}

export function rateLimit(perPeriod: number, periodMs = hourMs, burst?: number): RateLimit {
  return { perPeriod, periodMs, burst: burst ?? defaultBurst(perPeriod) };
}

/**
 * GCRA (generic cell rate algorithm): the state is one number, the theoretical arrival time
 * `tat` up to which the rate is already booked. A permit costs one emission interval
 * T = period / perPeriod; permits are granted while tat stays within burst × T of now.
 */
export function takePermits(
  tat: number | undefined,
  now: number,
  limit: RateLimit,
  count: number,
): { granted: number; tat: number; retryInMs: number } {
  const interval = limit.periodMs / limit.perPeriod;
  const start = tat === undefined || tat < now ? now : tat;
  // Relative to now: `now + burst × interval - start` lost a tiny interval (10^8 per hour: 36 µs) in
  // the rounding of an epoch-sized sum, and a burst of 1 was never granted.
  const capacity = Math.floor(limit.burst - (start - now) / interval + 1e-9);
  const granted = Math.min(count, Math.max(capacity, 0));
  const next = start + granted * interval;
  const retryInMs = granted < count ? Math.max(1, Math.ceil(next + interval - limit.burst * interval - now)) : 0;
  return { granted, tat: next, retryInMs };
}

let leaseCounter = 0;
const leasePrefix = randomId(6);

/** Unique across processes: a random per-process prefix and a counter. */
export function newLeaseId(): string {
  leaseCounter += 1;
  return `${leasePrefix}.${leaseCounter.toString(36)}`;
}

/** How long a waiting connection should sleep at most before asking again (another process may release). */
export const connectionPollMs = 250;
