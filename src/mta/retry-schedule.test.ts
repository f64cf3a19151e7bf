import { describe, expect, it } from 'vitest';
import { isExpired, scheduleRetry } from './retry-schedule.ts';

describe('scheduleRetry', () => {
  const delays = [60, 300, 900];
  const now = 1_000_000;
  it.each([
    [1, now + 60_000],
    [2, now + 300_000],
    [3, now + 900_000],
    [7, now + 900_000],
  ])('after %i attempt(s) retries at the scheduled delay', (attempts, retryAt) => {
    expect(scheduleRetry(attempts, now, null, delays)).toEqual({ kind: 'retry', retryAt });
  });

  it('expires when the retry would start after the validity ends', () => {
    expect(scheduleRetry(2, now, now + 299_999, delays)).toEqual({ kind: 'expired' });
    expect(scheduleRetry(2, now, now + 300_000, delays)).toEqual({ kind: 'retry', retryAt: now + 300_000 });
  });

  it('treats zero attempts like the first', () => {
    expect(scheduleRetry(0, now, null, delays)).toEqual({ kind: 'retry', retryAt: now + 60_000 });
  });

  it('knows a message claimed past its validity is expired', () => {
    expect(isExpired(now, now - 1)).toBe(true);
    expect(isExpired(now, now)).toBe(false);
    expect(isExpired(now, null)).toBe(false);
  });
});
