import { describe, expect, it } from 'vitest';
import { DEFAULT_MASS_REJECTION, MassRejectionGuard } from './mass-rejection.ts';

const minute = 60_000;
const unknown = (domain: string) => ({ domain, hard: true, reply: '550 5.1.1 user unknown' });
const accepted = (domain: string) => ({ domain, hard: false });

describe('MassRejectionGuard', () => {
  it('trips a domain once minMessages are answered and hardRatio of them are hard', () => {
    const guard = new MassRejectionGuard(DEFAULT_MASS_REJECTION);
    const t0 = Date.UTC(2026, 3, 10, 6);
    expect(
      guard.record(
        Array.from({ length: 49 }, () => unknown('bigisp.test')),
        t0,
      ),
    ).toEqual([]);
    const [trip] = guard.record([unknown('bigisp.test')], t0 + minute);
    expect(trip).toMatchObject({
      domain: 'bigisp.test',
      messages: 50,
      hard: 50,
      until: t0 + minute + 180 * minute,
      windowStart: t0 + minute - 60 * minute,
      sampleReply: '550 5.1.1 user unknown',
    });
    expect(guard.trippedFor('BigISP.test', t0 + 2 * minute)).toBe(trip);
    expect(guard.trippedFor('bigisp.test', t0 + minute + 180 * minute)).toBeUndefined();
  });

  it('leaves a domain with a few unknown users alone, and forgets answers older than the window', () => {
    const guard = new MassRejectionGuard(DEFAULT_MASS_REJECTION);
    const t0 = Date.UTC(2026, 3, 10, 6);
    const batch = Array.from({ length: 200 }, (_, i) => (i % 10 === 0 ? unknown('ok.test') : accepted('ok.test')));
    expect(guard.record(batch, t0)).toEqual([]);
    // 40 hard an hour ago, 30 hard now: only the 30 of the window count (30 < 50 answered).
    const old = new MassRejectionGuard(DEFAULT_MASS_REJECTION);
    old.record(
      Array.from({ length: 40 }, () => unknown('x.test')),
      t0,
    );
    expect(
      old.record(
        Array.from({ length: 30 }, () => unknown('x.test')),
        t0 + 61 * minute,
      ),
    ).toEqual([]);
  });

  it('does nothing when disabled', () => {
    const guard = new MassRejectionGuard({ ...DEFAULT_MASS_REJECTION, enabled: false });
    expect(
      guard.record(
        Array.from({ length: 500 }, () => unknown('bigisp.test')),
        0,
      ),
    ).toEqual([]);
  });
});
