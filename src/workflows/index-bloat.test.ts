import { describe, expect, it } from 'vitest';
import { estimateIndexBloat, shouldReindex } from './index-bloat.ts';

describe('estimateIndexBloat', () => {
  // A bigint primary key of 1M rows is about 21.4 MB on PostgreSQL 15 after a fresh build (fill 90).
  const fresh = { bytes: 22_487_040, tuples: 1_000_000, keyWidth: 8, fillFactor: 90 };

  it('sees a freshly built index as (nearly) unbloated', () => {
    expect(estimateIndexBloat(fresh).bloatRatio).toBeLessThan(0.1);
  });

  it('sees an index four times its expected size as 75% bloat', () => {
    const { expectedBytes } = estimateIndexBloat(fresh);
    expect(estimateIndexBloat({ ...fresh, bytes: expectedBytes * 4 }).bloatRatio).toBeCloseTo(0.75, 2);
  });

  it('never rebuilds small indexes, rebuilds big bloated ones', () => {
    const settings = { reindexBloatRatio: 0.5, reindexMinBytes: 8 * 1024 * 1024 };
    expect(shouldReindex({ bytes: 1_000_000, tuples: 0, keyWidth: 8, fillFactor: 90 }, settings)).toBe(false);
    expect(shouldReindex({ ...fresh, bytes: fresh.bytes * 3 }, settings)).toBe(true);
    expect(shouldReindex(fresh, settings)).toBe(false);
  });
});
