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

describe('compileSchedule', () => {
  it('names the setting of a bad expression or time zone', () => {
    expect(() => compileSchedule('every day', 'UTC', 'workflows.overrides.cleanup.schedule')).toThrow(
      /workflows\.overrides\.cleanup\.schedule/,
    );
    expect(() => compileSchedule('0 4 * * *', 'Mars/Olympus', 'workflows.timezone')).toThrow(/Mars\/Olympus/);
  });
});

describe('schedulePeriod', () => {
  it('is the longest gap between slots', () => {
    expect(schedulePeriod(compileSchedule('*/5 * * * *', 'UTC', 't'), 0)).toBe(5 * 60_000);
    expect(schedulePeriod(compileSchedule('0 4 * * 1-5', 'UTC', 't'), at('2026-01-01T00:00:00Z'))).toBe(3 * 86_400_000);
  });
});
