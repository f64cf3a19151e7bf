import { describe, expect, it } from 'vitest';
import { createMemoryThrottle } from './memory-throttle.ts';
import { defaultBurst, rateLimit, takePermits } from './throttle.ts';

describe('GCRA arithmetic', () => {
  it('spreads an hourly quota evenly instead of bursting it in the first minute', () => {
    const limit = rateLimit(3_600); // one per second, burst 10
    expect(limit.burst).toBe(10);
    let tat: number | undefined;
    let granted = 0;
    const start = 1_000_000;
    // Ask for 100 permits every 100 ms during the first minute.
    for (let now = start; now < start + 60_000; now += 100) {
      const result = takePermits(tat, now, limit, 100);
      if (result.granted > 0) tat = result.tat;
      granted += result.granted;
    }
    // 60 s at 1/s plus the burst of 10: nowhere near the 3,600 of the hour.
    expect(granted).toBeGreaterThanOrEqual(69);
    expect(granted).toBeLessThanOrEqual(71);
  });

  it('holds the rate within ±5 % over a scaled window', () => {
    const limit = rateLimit(600, 60_000); // 600 per "hour" of 60 s
    let tat: number | undefined;
    let granted = 0;
    for (let now = 0; now < 60_000; now += 7) {
      const result = takePermits(tat, now, limit, 3);
      if (result.granted > 0) tat = result.tat;
      granted += result.granted;
    }
    expect(Math.abs(granted - 600) / 600).toBeLessThanOrEqual(0.05);
  });

  it('grants partially and says when the next permit is due', () => {
    const limit = rateLimit(36_000, 3_600_000, 5); // one per 100 ms, burst 5
    const first = takePermits(undefined, 0, limit, 8);
    expect(first).toEqual({ granted: 5, tat: 500, retryInMs: 100 });
    const denied = takePermits(first.tat, 50, limit, 1);
    expect(denied.granted).toBe(0);
    expect(denied.retryInMs).toBe(50);
    expect(takePermits(first.tat, 100, limit, 1).granted).toBe(1);
    expect(defaultBurst(20_000)).toBe(56);
    expect(defaultBurst(10)).toBe(1);
  });

  it('grants a burst of 1 at an epoch-sized time, however small the interval (10^8 per hour: 36 µs)', () => {
    const limit = rateLimit(100_000_000, 3_600_000, 1);
    let tat: number | undefined;
    let granted = 0;
    // Real clock values: `now + interval - now` loses the interval's last digits at this magnitude.
    for (let now = Date.UTC(2026, 11, 8); granted < 1_000 && now < Date.UTC(2026, 11, 8) + 1_000; now += 1) {
      const result = takePermits(tat, now, limit, 5);
      tat = result.tat;
      granted += result.granted;
    }
    expect(granted).toBeGreaterThanOrEqual(1_000);
  });
});

describe('memory throttle', () => {
  it('never opens more than maxConnections leases, and releases them', async () => {
    const throttle = createMemoryThrottle();
    const grants = await Promise.all(Array.from({ length: 5 }, () => throttle.acquireConnection('p', 3, 60_000, 0)));
    expect(grants.filter((g) => g.granted)).toHaveLength(3);
    const refused = grants.find((g) => !g.granted)!;
    expect(refused).toMatchObject({ granted: false, open: 3 });
    const lease = grants.find((g) => g.granted)!;
    if (!lease.granted) throw new Error('unreachable');
    await throttle.releaseConnection('p', lease.leaseId);
    await throttle.releaseConnection('p', lease.leaseId);
    expect((await throttle.acquireConnection('p', 3, 60_000, 1)).granted).toBe(true);
    expect((await throttle.acquireConnection('p', 3, 60_000, 1)).granted).toBe(false);
    expect((await throttle.snapshot(2)).connections).toEqual({ p: 3 });
  });

  it('expires the leases of a crashed holder, and renewal keeps a live one', async () => {
    const throttle = createMemoryThrottle();
    const a = await throttle.acquireConnection('p', 1, 1_000, 0);
    if (!a.granted) throw new Error('first lease must be granted');
    expect(await throttle.renewConnection('p', a.leaseId, 1_000, 900)).toBe(true);
    expect((await throttle.acquireConnection('p', 1, 1_000, 1_500)).granted).toBe(false);
    // Never renewed again: gone at 1,900.
    expect((await throttle.acquireConnection('p', 1, 1_000, 1_900)).granted).toBe(true);
    expect(await throttle.renewConnection('p', a.leaseId, 1_000, 1_950)).toBe(false);
  });

  it('shares one rate key between callers', async () => {
    const throttle = createMemoryThrottle();
    const limit = rateLimit(3_600, 3_600_000, 2);
    expect((await throttle.acquireMessages('r', limit, 5, 0)).granted).toBe(2);
    expect(await throttle.acquireMessages('r', limit, 1, 0)).toEqual({ granted: 0, retryInMs: 1_000 });
    expect((await throttle.acquireMessages('other', limit, 1, 0)).granted).toBe(1);
    expect((await throttle.snapshot(0)).rates.r).toEqual({ bookedUntil: 2_000 });
  });
});
