import { describe, expect, it } from 'vitest';
import { createRateWindow, decideRecipient } from './inbound-policy.ts';

const policy = { bounceDomain: 'bounces.brand.test', verpPrefix: 'bounce', feedbackAddress: 'fbl@bounces.brand.test' };

describe('decideRecipient', () => {
  const cases: Array<[string, boolean, string | null]> = [
    ['bounce+42@bounces.brand.test', true, '42'],
    ['Bounce+42@Bounces.Brand.Test', true, '42'],
    ['fbl@bounces.brand.test', true, null],
    ['bounce+42@other.test', false, null],
    ['postmaster@bounces.brand.test', false, null],
    ['victim@gmail.test', false, null],
    ['bounce+42@bounces.brand.test@evil.test', false, null],
    ['bounce+../../x@bounces.brand.test', false, null],
  ];
  for (const [address, ok, logId] of cases) {
    it(address, () => {
      const decision = decideRecipient(address, policy, 0);
      expect(decision.ok).toBe(ok);
      if (decision.ok) expect(decision.logId).toBe(logId);
      else expect(decision).toMatchObject({ code: 550, message: expect.stringMatching(/^5\.7\.1 /) });
    });
  }
});

describe('createRateWindow', () => {
  it('allows the limit per client per minute, then refuses until the next minute', () => {
    const window = createRateWindow(3);
    const t = Date.UTC(2026, 0, 1, 10, 0, 5);
    expect([1, 2, 3, 4].map(() => window.take('192.0.2.1', t))).toEqual([true, true, true, false]);
    expect(window.take('192.0.2.2', t)).toBe(true);
    expect(window.take('192.0.2.1', t + 60_000)).toBe(true);
  });

  it('stays bounded with many clients', () => {
    const window = createRateWindow(1, 100);
    const t = Date.UTC(2026, 0, 1, 10, 0, 0);
    for (let i = 0; i < 1_000; i++) window.take(`c${i}`, t + i * 60_000);
    expect(window.size).toBeLessThanOrEqual(100);
  });
});
