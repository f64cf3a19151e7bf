import { expect, it } from 'vitest';
import { manualClock } from '../common/clock.ts';
import { createTickCache } from './tick-cache.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

it('coalesces concurrent requests into one load and shares the value for one tick', async () => {
  const clock = manualClock(1_000_000);
  const pending = deferred<string>();
  const cache = createTickCache<number, string>({ lifetimeMs: 2_000, clock, load: () => pending.promise });
  const answers = Array.from({ length: 20 }, () => cache.get(7));
  pending.resolve('tick 1');
  expect(await Promise.all(answers)).toEqual(Array(20).fill('tick 1'));
  clock.advance(1_999);
  expect(await cache.get(7)).toBe('tick 1');
  expect(cache.loads()).toBe(1);
});

it('shares a load that outlasts the tick, then keeps its value for a tick after it ended', async () => {
  const clock = manualClock(1_000_000);
  const pending = deferred<string>();
  const cache = createTickCache<number, string>({ lifetimeMs: 2_000, clock, load: () => pending.promise });
  const first = cache.get(1);
  clock.advance(5_000); // a slow load (a huge delivery)
  const second = cache.get(1);
  pending.resolve('slow');
  expect(await Promise.all([first, second])).toEqual(['slow', 'slow']);
  clock.advance(1_999);
  expect(await cache.get(1)).toBe('slow');
  expect(cache.loads()).toBe(1);
});

it('loads again after the tick, with the previous value, and per key', async () => {
  const clock = manualClock(1_000_000);
  const seen: Array<string | undefined> = [];
  let n = 0;
  const cache = createTickCache<number, string>({
    lifetimeMs: 2_000,
    clock,
    load: async (key, previous) => {
      seen.push(previous?.value);
      n += 1;
      return `${key}:${n}`;
    },
  });
  expect(await cache.get(1)).toBe('1:1');
  clock.advance(2_000);
  expect(await cache.get(1)).toBe('1:2');
  expect(await cache.get(2)).toBe('2:3');
  expect(seen).toEqual([undefined, '1:1', undefined]);
  cache.invalidate(2);
  expect(await cache.get(2)).toBe('2:4');
  expect(cache.loads()).toBe(4);
});

it('does not keep a failed load', async () => {
  const clock = manualClock(1_000_000);
  let fail = true;
  const cache = createTickCache<number, string>({
    lifetimeMs: 2_000,
    clock,
    load: async () => {
      if (fail) throw new Error('database gone');
      return 'ok';
    },
  });
  await expect(cache.get(1)).rejects.toThrow('database gone');
  fail = false;
  expect(await cache.get(1)).toBe('ok');
});

it('peeks without waiting or loading; refresh loads behind it, once, while the last value is still shown', async () => {
  const clock = manualClock(1_000_000);
  const loadsOf: Array<ReturnType<typeof deferred<string>>> = [];
  const cache = createTickCache<number, string>({
    lifetimeMs: 2_000,
    clock,
    load: () => {
      const next = deferred<string>();
      loadsOf.push(next);
      return next.promise;
    },
  });
  expect(cache.peek(1)).toBeUndefined();
  expect(cache.loads()).toBe(0);
  cache.refresh(1);
  cache.refresh(1); // the load in flight is shared, not started twice
  expect(cache.loads()).toBe(1);
  expect(cache.peek(1)).toBeUndefined();
  loadsOf[0]!.resolve('first');
  expect(await cache.get(1)).toBe('first');
  expect(cache.peek(1)?.value).toBe('first');
  cache.refresh(1); // still fresh: nothing to do
  expect(cache.loads()).toBe(1);
  clock.advance(2_000);
  cache.refresh(1);
  expect(cache.loads()).toBe(2);
  expect(cache.peek(1)?.value).toBe('first'); // the stale value is shown while the reload runs
  loadsOf[1]!.resolve('second');
  expect(await cache.get(1)).toBe('second');
  expect(cache.peek(1)).toEqual({ value: 'second', at: 1_002_000 });
});

it('keeps a slow load costFactor times its duration, so a scan never runs most of the time', async () => {
  const clock = manualClock(1_000_000);
  const cache = createTickCache<number, string>({
    lifetimeMs: 2_000,
    clock,
    costFactor: 20,
    load: async () => {
      clock.advance(500); // a 500 ms scan
      return 'scanned';
    },
  });
  await cache.get(1);
  clock.advance(9_999); // 10 s after the load ended is 20 × 500 ms
  await cache.get(1);
  expect(cache.loads()).toBe(1);
  clock.advance(1);
  await cache.get(1);
  expect(cache.loads()).toBe(2);
});
