import { describe, expect, it } from 'vitest';
import { refreshedValue, UnavailableValue } from './refreshed-value.ts';

function source() {
  let version = 0;
  let fail = false;
  const reads: number[] = [];
  return {
    reads,
    failNext: () => (fail = true),
    read: async () => {
      version += 1;
      reads.push(version);
      if (fail) {
        fail = false;
        throw new Error('database unreachable');
      }
      return version;
    },
  };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

describe('refreshedValue', () => {
  it('waits for the first read, then serves a fresh value without reading again', async () => {
    let clock = 0;
    const data = source();
    const value = refreshedValue({ read: data.read, maxAgeMs: 5_000, now: () => clock, onRefreshError: () => {} });
    expect(await Promise.all([value(), value()])).toEqual([1, 1]);
    clock = 4_999;
    expect(await value()).toBe(1);
    expect(data.reads).toEqual([1]);
  });

  it('serves a stale value at once and refreshes it once behind the call', async () => {
    let clock = 0;
    const data = source();
    const value = refreshedValue({ read: data.read, maxAgeMs: 5_000, now: () => clock, onRefreshError: () => {} });
    await value();
    clock = 5_000;
    expect(await Promise.all([value(), value(), value()])).toEqual([1, 1, 1]);
    expect(data.reads).toEqual([1]);
    await nextTurn();
    expect(data.reads).toEqual([1, 2]);
    expect(await value()).toBe(2);
  });

  it('keeps the last value when a refresh fails, reports the error and tries again later', async () => {
    let clock = 0;
    const data = source();
    const errors: unknown[] = [];
    const value = refreshedValue({
      read: data.read,
      maxAgeMs: 1_000,
      now: () => clock,
      onRefreshError: (error) => errors.push(error),
    });
    await value();
    clock = 2_000;
    data.failNext();
    expect(await value()).toBe(1);
    await nextTurn();
    expect(errors).toHaveLength(1);
    expect(await value()).toBe(1);
    await nextTurn();
    expect(await value()).toBe(3);
  });

  it('with maxAgeMs 0 reads for every call, shared by the calls made during the read', async () => {
    const data = source();
    const value = refreshedValue({ read: data.read, maxAgeMs: 0, now: () => 0, onRefreshError: () => {} });
    expect(await Promise.all([value(), value()])).toEqual([1, 1]);
    expect(await value()).toBe(2);
  });

  it('past maxServedAgeMs serves nothing while the database does not answer, and reads again behind', async () => {
    let clock = 0;
    const data = source();
    const errors: unknown[] = [];
    const value = refreshedValue({
      read: data.read,
      maxAgeMs: 5_000,
      maxServedAgeMs: 60_000,
      now: () => clock,
      onRefreshError: (error) => errors.push(error),
    });
    expect(await value()).toBe(1);
    clock = 30_000;
    data.failNext();
    expect(await value()).toBe(1);
    await nextTurn();
    expect(errors).toHaveLength(1);
    clock = 61_000;
    await expect(value()).rejects.toBeInstanceOf(UnavailableValue);
    expect(value.ageMs()).toBe(61_000);
    await nextTurn();
    expect(data.reads).toEqual([1, 2, 3]);
    expect(await value()).toBe(3);
    expect(value.ageMs()).toBe(0);
  });

  it('a value old only because nobody asked is read again before it is served', async () => {
    let clock = 0;
    const data = source();
    const value = refreshedValue({
      read: data.read,
      maxAgeMs: 5_000,
      maxServedAgeMs: 60_000,
      now: () => clock,
      onRefreshError: () => {},
    });
    expect(await value()).toBe(1);
    clock = 600_000;
    expect(await value()).toBe(2);
    data.failNext();
    clock = 1_200_000;
    await expect(value()).rejects.toBeInstanceOf(UnavailableValue);
  });
});
