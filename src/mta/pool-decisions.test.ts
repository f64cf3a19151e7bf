import { describe, expect, it } from 'vitest';
import { connectionsToOpen, permitsToAsk, slowPathSurplus, surplusToHold, type PathCounts } from './pool-decisions.ts';

const idle: PathCounts = { queued: 0, permits: Infinity, usable: 0, open: 0, opening: 0, draining: 0 };

describe('connectionsToOpen', () => {
  it.each([
    // counts, maxConnections, waiting for a lease → connections to open
    [{ queued: 10 }, 3, false, 3],
    [{ queued: 2 }, 3, false, 2],
    [{ queued: 10, open: 1, usable: 1 }, 3, false, 2],
    [{ queued: 10, opening: 2 }, 3, false, 1],
    [{ queued: 10, open: 2, usable: 1 }, 3, false, 1],
    [{ queued: 10, open: 2, usable: 2, draining: 1 }, 3, false, 0],
    [{ queued: 10, draining: 3 }, 3, false, 0],
    [{ queued: 10 }, 3, true, 0],
    [{ queued: 0 }, 3, false, 0],
    // with a throttle: no permit yet → only the first connection (it resolves the path's address)
    [{ queued: 10, permits: 0 }, 3, false, 1],
    [{ queued: 10, permits: 0, opening: 1 }, 3, false, 0],
    [{ queued: 10, permits: 0, open: 1, usable: 1 }, 3, false, 0],
    [{ queued: 10, permits: 2, open: 1, usable: 1 }, 3, false, 1],
    [{ queued: 10, permits: 0.5 }, 3, false, 1],
  ] as const)('%o, max %i, lease wait %s → %i', (counts, max, waiting, expected) => {
    expect(connectionsToOpen({ ...idle, ...counts }, max, waiting)).toBe(expected);
  });
});

describe('permitsToAsk', () => {
  it.each([
    [{ queued: 10, permits: 0, usable: 1 }, 100, 10],
    [{ queued: 500, permits: 20, usable: 1 }, 100, 100],
    [{ queued: 10, permits: 10, usable: 1 }, 100, 0],
    [{ queued: 10, permits: 0, opening: 1 }, 100, 10],
    [{ queued: 10, permits: 0, draining: 1 }, 100, 10],
    // waiting for a lease (nothing open, opening or draining): no permits booked from the shared rate
    [{ queued: 10, permits: 0 }, 100, 0],
  ] as const)('%o, batch %i → %i', (counts, batch, expected) => {
    expect(permitsToAsk({ ...idle, ...counts }, batch)).toBe(expected);
  });
});

describe('surplusToHold', () => {
  it.each([
    // 1 message per second: 15 s of work + 10 kept, the rest held
    [{ queued: 100, permits: 0 }, 10_000, 1_000, 75],
    [{ queued: 100, permits: 5 }, 10_000, 1_000, 70],
    [{ queued: 20, permits: 0 }, 10_000, 1_000, 0],
    // fast rate: everything stays
    [{ queued: 1_000, permits: 0 }, 10_000, 10, 0],
    [{ queued: 100, permits: 0 }, 10_000, 0, 0],
  ] as const)('%o, horizon %i ms, next permit in %i ms → %i held', (counts, horizon, retryIn, expected) => {
    expect(surplusToHold({ ...idle, ...counts }, horizon, retryIn)).toBe(expected);
  });
});

describe('slowPathSurplus', () => {
  it.each([
    // a tarpit: 2 taken in a 10 s window keep a minute's worth (18) + 10
    [100, 2, 10_000, 60_000, 72],
    // a silent MX: nothing taken, 10 kept
    [100, 0, 10_000, 60_000, 90],
    [8, 0, 10_000, 60_000, 0],
    // a steady path: 1,000 in 10 s keep 9,010, more than it holds
    [5_000, 1_000, 10_000, 60_000, 0],
    // a longer window measures a slower pace
    [100, 2, 20_000, 60_000, 81],
  ] as const)(
    '%i queued, %i taken in %i ms, keep for %i ms → %i held',
    (queued, taken, windowMs, keepForMs, expected) => {
      expect(slowPathSurplus(queued, taken, windowMs, keepForMs)).toBe(expected);
    },
  );
});
