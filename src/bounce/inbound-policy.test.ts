import { describe, expect, it } from 'vitest';
import { createRateWindow, decideRecipient } from './inbound-policy.ts';
import { createVerpSigner } from './verp.ts';

const day = 86_400_000;
const signer = createVerpSigner({
  keys: [{ id: 'k1', secret: 'a-test-secret-0123456789', createdAt: 0 }],
  graceMs: day,
});
const other = createVerpSigner({
  keys: [{ id: 'k1', secret: 'another-secret-0123456789', createdAt: 0 }],
  graceMs: day,
});
const policy = {
  bounceDomain: 'bounces.brand.test',
  verpPrefix: 'bounce',
  verp: signer,
  feedbackAddress: 'fbl@bounces.brand.test',
};
const signed = signer.address(42, 'bounces.brand.test');
const forged = other.address(42, 'bounces.brand.test');

describe('decideRecipient', () => {
  const cases: Array<[string, boolean, string | null]> = [
    [signed, true, '42'],
    [signed.toUpperCase(), true, '42'],
    ['fbl@bounces.brand.test', true, null],
    ['postmaster@bounces.brand.test', true, null],
    ['Abuse@Bounces.Brand.Test', true, null],
    // Unsigned or badly signed VERP addresses name a guessable id: refused.
    ['bounce+42@bounces.brand.test', false, null],
    [forged, false, null],
    [signed.replace('+42-', '+43-'), false, null],
    [signed.replace('bounces.brand.test', 'other.test'), false, null],
    ['postmaster@other.test', false, null],
    ['victim@gmail.test', false, null],
    [`${signed}@evil.test`, false, null],
    ['bounce+../../x@bounces.brand.test', false, null],
  ];
  for (const [address, ok, logId] of cases) {
    it(address, () => {
      const decision = decideRecipient(address, policy, 0);
      expect(decision.ok).toBe(ok);
      if (decision.ok) expect(decision.logId).toBe(logId);
      else expect(decision).toMatchObject({ code: 550, message: expect.stringMatching(/^5\.7\.1 /) });
      // The same answer; counted apart when it is a VERP address of ours that does not verify.
      if (!decision.ok) expect(decision.unverifiedVerp).toBe(/^bounce\+[^@]*@bounces\.brand\.test$/i.test(address));
    });
  }

  it('postmaster@ and abuse@ are accepted for review only', () => {
    expect(decideRecipient('postmaster@bounces.brand.test', policy, 0)).toMatchObject({ ok: true, reviewOnly: true });
    expect(decideRecipient(signed, policy, 0)).not.toHaveProperty('reviewOnly');
  });
});

describe('VERP signing', () => {
  it('an older key verifies until a newer one is graceMs old, then no more', () => {
    const oldKey = { id: 'old', secret: 'old-secret-0123456789abcdef', createdAt: 0 };
    const newKey = { id: 'new', secret: 'new-secret-0123456789abcdef', createdAt: 10 * day };
    const before = createVerpSigner({ keys: [oldKey], graceMs: 30 * day });
    const after = createVerpSigner({ keys: [oldKey, newKey], graceMs: 30 * day });
    const suffix = (address: string) => address.slice('bounce+'.length, address.indexOf('@'));
    const oldAddress = before.address(7, 'b.test');
    expect(after.address(7, 'b.test')).not.toBe(oldAddress);
    expect(after.verify(suffix(oldAddress), 20 * day)).toBe(7);
    expect(after.verify(suffix(oldAddress), 40 * day + 1)).toBeUndefined();
    expect(after.verify(suffix(after.address(7, 'b.test')), 400 * day)).toBe(7);
    expect(after.verify('7', 0)).toBeUndefined();
    expect(after.verify('7-', 0)).toBeUndefined();
  });
});

describe('createRateWindow', () => {
  it('allows the limit per client per minute, then refuses until the next minute', () => {
    const window = createRateWindow(3);
    const t = Date.UTC(2026, 0, 1, 10, 0, 5);
    expect([1, 2, 3, 4].map(() => window.take('192.0.2.1', t))).toEqual([
      'allowed',
      'allowed',
      'allowed',
      'over_limit',
    ]);
    expect(window.take('192.0.2.2', t)).toBe('allowed');
    expect(window.take('192.0.2.1', t + 60_000)).toBe('allowed');
  });

  it('counts an IPv6 client by its /64 (or the prefix given), an IPv4-mapped one as its IPv4 address', () => {
    const window = createRateWindow(2);
    const t = Date.UTC(2026, 0, 1, 10, 0, 5);
    // Before: every address of the /64 had its own two messages a minute.
    expect(['2001:db8:1:2::1', '2001:db8:1:2::2', '2001:db8:1:2:ffff::3'].map((a) => window.take(a, t))).toEqual([
      'allowed',
      'allowed',
      'over_limit',
    ]);
    expect(window.take('2001:db8:1:3::1', t)).toBe('allowed');
    expect(['192.0.2.9', '::ffff:192.0.2.9', '::ffff:c000:209'].map((a) => window.take(a, t))).toEqual([
      'allowed',
      'allowed',
      'over_limit',
    ]);
    const bySite = createRateWindow(1, 10_000, 48);
    expect([bySite.take('2001:db8:7:1::1', t), bySite.take('2001:db8:7:2::1', t)]).toEqual(['allowed', 'over_limit']);
  });

  it('stays bounded with many clients in one minute, and sweeps the expired windows of earlier ones', () => {
    const window = createRateWindow(1, 100);
    const t = Date.UTC(2026, 0, 1, 10, 0, 0);
    // Before: a full table was scanned for each new client, nothing was expired, and it grew to 1000.
    const decisions = Array.from({ length: 1_000 }, (_, i) => window.take(`2001:db8:${i.toString(16)}::1`, t));
    expect(window.size).toBe(100);
    expect(decisions.filter((d) => d === 'allowed')).toHaveLength(100);
    expect(decisions.slice(100).every((d) => d === 'untracked')).toBe(true);
    expect(window.take('192.0.2.1', t + 60_000)).toBe('allowed');
    expect(window.size).toBe(1);
  });

  it('never forgets a throttled client early: fresh addresses cannot push its window out', () => {
    const window = createRateWindow(1, 100);
    const t = Date.UTC(2026, 0, 1, 10, 0, 0);
    expect([window.take('192.0.2.1', t), window.take('192.0.2.1', t)]).toEqual(['allowed', 'over_limit']);
    for (let i = 0; i < 1_000; i++) window.take(`198.51.${i >> 8}.${i & 255}`, t + 1_000);
    expect(window.take('192.0.2.1', t + 59_999)).toBe('over_limit');
    expect(window.take('192.0.2.1', t + 60_000)).toBe('allowed');
  });

  it('a clock stepped back does not leave the table full of windows from the future', () => {
    const window = createRateWindow(1, 100);
    const t = Date.UTC(2026, 0, 1, 10, 0, 0);
    for (let i = 0; i < 100; i++) window.take(`198.51.100.${i}`, t);
    expect(window.take('192.0.2.1', t - 3_600_000)).toBe('allowed');
    expect(window.size).toBe(1);
  });
});
