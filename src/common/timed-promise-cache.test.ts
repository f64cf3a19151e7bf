import { describe, expect, it } from 'vitest';
import { createTimedPromiseCache } from './timed-promise-cache.ts';

describe('createTimedPromiseCache', () => {
  it('shares one load within ttlMs, loads again after it, and keeps at most maxEntries keys', async () => {
    const cache = createTimedPromiseCache<string, number>({ ttlMs: 1_000, maxEntries: 2 });
    let loads = 0;
    const load = async () => ++loads;
    expect(await cache.get('a', 0, load)).toBe(1);
    expect(await cache.get('a', 999, load)).toBe(1);
    expect(await cache.get('a', 1_000, load)).toBe(2);
    await cache.get('b', 1_000, load);
    await cache.get('c', 1_000, load);
    // 'a' was the oldest: pushed out by 'c', loaded again.
    expect(await cache.get('a', 1_001, load)).toBe(5);
  });

  it('forgets a failed load, without pushing out the newer entry of its key', async () => {
    const cache = createTimedPromiseCache<string, string>({ ttlMs: 1_000, maxEntries: 10 });
    await expect(cache.get('k', 0, async () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(await cache.get('k', 1, async () => 'loaded again')).toBe('loaded again');

    let fail!: (error: Error) => void;
    const slow = cache.get('j', 0, () => new Promise<string>((_, reject) => (fail = reject)));
    expect(await cache.get('j', 1_000, async () => 'newer')).toBe('newer');
    fail(new Error('late failure'));
    await expect(slow).rejects.toThrow('late failure');
    expect(await cache.get('j', 1_001, async () => 'not loaded')).toBe('newer');
  });
});
