import { describe, expect, it } from 'vitest';
import { compileSchedule, findDueSlot, schedulePeriod } from './schedule.ts';

const at = (iso: string) => Date.parse(iso);

describe('findDueSlot', () => {
  const hourly = compileSchedule('0 * * * *', 'UTC', 'test');

  it('is not due before the next slot', () => {
    expect(findDueSlot(hourly, at('2026-01-01T00:30:00Z'), at('2026-01-01T00:59:59Z'))).toBeUndefined();
  });

  it('is due on the slot, once', () => {
    expect(findDueSlot(hourly, at('2026-01-01T00:30:00Z'), at('2026-01-01T01:00:00Z'))).toEqual({
      slot: at('2026-01-01T01:00:00Z'),
      missed: 1,
    });
    expect(findDueSlot(hourly, at('2026-01-01T01:00:00Z'), at('2026-01-01T01:00:10Z'))).toBeUndefined();
  });

  it('reports the latest slot and the count after downtime', () => {
    expect(findDueSlot(hourly, at('2026-01-01T00:30:00Z'), at('2026-01-01T05:10:00Z'))).toEqual({
      slot: at('2026-01-01T05:00:00Z'),
      missed: 5,
    });
  });

  it('finds the latest slot of a minutely schedule down for a month without counting them all', () => {
    const minutely = compileSchedule('* * * * *', 'UTC', 'test');
    const due = findDueSlot(minutely, at('2026-01-01T00:00:00Z'), at('2026-02-01T00:00:30Z'));
    expect(due?.slot).toBe(at('2026-02-01T00:00:00Z'));
    expect(due?.missed).toBe(1_000);
  });

  it('follows the configured time zone across DST', () => {
    const paris = compileSchedule('0 4 * * *', 'Europe/Paris', 'test');
    expect(paris.nextAfter(at('2026-01-10T00:00:00Z'))).toBe(at('2026-01-10T03:00:00Z'));
    expect(paris.nextAfter(at('2026-07-10T00:00:00Z'))).toBe(at('2026-07-10T02:00:00Z'));
  });
});

describe('the repeated hour when DST ends', () => {
  const slots = (expression: string, timezone: string, from: string, count: number) => {
    const schedule = compileSchedule(expression, timezone, 'test');
    const out: string[] = [];
    let cursor = at(from);
    for (let i = 0; i < count; i += 1) {
      cursor = schedule.nextAfter(cursor)!;
      out.push(new Date(cursor).toISOString().slice(11, 16));
    }
    return out;
  };

  it('runs an every-5-minutes schedule through both 02:00-03:00 hours (Paris, 25 Oct 2026)', () => {
    // 02:00-02:59 CEST is 00:00-00:59 UTC, then 02:00-02:59 CET is 01:00-01:59 UTC.
    const got = slots('*/5 * * * *', 'Europe/Paris', '2026-10-24T23:50:00Z', 26);
    expect(got.slice(0, 3)).toEqual(['23:55', '00:00', '00:05']);
    expect(got.slice(12, 15)).toEqual(['00:55', '01:00', '01:05']);
    expect(got).toHaveLength(new Set(got).size);
  });

  it('runs an hourly schedule every real hour (New York, 1 Nov 2026)', () => {
    // 01:00 EDT is 05:00 UTC, 01:00 EST is 06:00 UTC.
    expect(slots('0 * * * *', 'America/New_York', '2026-11-01T03:30:00Z', 5)).toEqual([
      '04:00',
      '05:00',
      '06:00',
      '07:00',
      '08:00',
    ]);
    expect(slots('@hourly', 'Europe/Paris', '2026-10-24T22:30:00Z', 4)).toEqual(['23:00', '00:00', '01:00', '02:00']);
  });

  it('never answers a slot before the time asked from, inside the second occurrence of the hour', () => {
    // croner 9 answered 05:15 UTC (01:15 EDT) when asked from 06:20 UTC (01:20 EST).
    expect(slots('*/15 * * * *', 'America/New_York', '2026-11-01T06:20:00Z', 3)).toEqual(['06:30', '06:45', '07:00']);
    const daily = compileSchedule('15 1 * * *', 'America/New_York', 'test');
    expect(daily.nextAfter(at('2026-11-01T06:20:00Z'))).toBe(at('2026-11-02T06:15:00Z'));
    expect(findDueSlot(daily, at('2026-11-01T06:20:00Z'), at('2026-11-01T06:20:00Z'))).toBeUndefined();
  });

  it('runs a schedule at a fixed hour once on the days DST starts and ends', () => {
    expect(slots('30 2 * * *', 'Europe/Paris', '2026-10-24T12:00:00Z', 2)).toEqual(['01:30', '01:30']);
    expect(slots('30 2 * * *', 'Europe/Paris', '2026-03-28T12:00:00Z', 2)).toEqual(['01:30', '00:30']);
  });
});

describe('compileSchedule', () => {
  it('names the setting of a bad expression or time zone', () => {
    expect(() => compileSchedule('every day', 'UTC', 'workflows.overrides.cleanup.schedule')).toThrow(
      /workflows\.overrides\.cleanup\.schedule/,
    );
    expect(() => compileSchedule('0 4 * * *', 'Mars/Olympus', 'workflows.timezone')).toThrow(/Mars\/Olympus/);
  });

  it('refuses a schedule that never fires, naming the setting', () => {
    for (const never of ['0 0 31 2 *', '0 0 30 2 *', '0 4 31 4 *'])
      expect(() => compileSchedule(never, 'UTC', 'workflows.overrides.stats.schedule')).toThrow(
        `workflows.overrides.stats.schedule: schedule "${never}" never fires (no date matches it)`,
      );
    expect(compileSchedule('0 0 29 2 *', 'UTC', 't').nextAfter(at('2026-01-01T00:00:00Z'))).toBe(
      at('2028-02-29T00:00:00Z'),
    );
  });
});

describe('schedulePeriod', () => {
  it('is the longest gap between slots', () => {
    expect(schedulePeriod(compileSchedule('*/5 * * * *', 'UTC', 't'), 0)).toBe(5 * 60_000);
    expect(schedulePeriod(compileSchedule('0 4 * * 1-5', 'UTC', 't'), at('2026-01-01T00:00:00Z'))).toBe(3 * 86_400_000);
  });
});
