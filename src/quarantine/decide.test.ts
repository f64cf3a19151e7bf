import { describe, expect, it } from 'vitest';
import { decideAddress, decideAll, decideSweep } from './decide.ts';
import { DEFAULT_QUARANTINE_SETTINGS, type AddressEvent, type AddressRecord, type EventVerdict } from './types.ts';

const day = 86_400_000;
const t0 = Date.UTC(2026, 2, 1, 9, 0);
const email = 'pat@example.test';
const settings = DEFAULT_QUARANTINE_SETTINGS;

// Real replies: 550 5.1.1 user unknown (hard), 452 4.2.2 mailbox full (soft), 421 4.7.0 throttled (soft).
const hard: EventVerdict = {
  category: 'userunknown',
  reason: 'user_unknown',
  type: 'hard',
  ruleId: 'status-bad-mailbox',
  packVersion: '2025.06-1',
};
const full: EventVerdict = {
  category: 'mailboxfull',
  reason: 'mailbox_full',
  type: 'soft',
  ruleId: 'status-mailbox-full',
  packVersion: '2025.06-1',
};
const throttled: EventVerdict = {
  category: 'ratelimited',
  reason: 'unreachable',
  type: 'soft',
  ruleId: 'rate-limit',
  packVersion: '2025.06-1',
};
const vacation: EventVerdict = {
  category: 'vacation',
  reason: 'ignored',
  type: 'ignored',
  ruleId: 'report.rfc3834',
  packVersion: '2025.06-1',
};

const smtp = (at: number, verdict: EventVerdict): AddressEvent => ({
  email,
  at,
  source: 'smtp',
  verdict,
  deliveryId: 1,
  deliveryLogId: 7,
  replyText: 'reply',
});
const row = (fields: Partial<AddressRecord>): AddressRecord => ({
  email,
  state: 'valid',
  errorCount: 0,
  lastErrorAt: null,
  reason: null,
  updatedAt: t0,
  ...fields,
});

describe('decideAddress', () => {
  const cases: Array<{
    name: string;
    current?: AddressRecord;
    event: AddressEvent;
    state: string;
    count: number;
    reason: string | null;
    counted?: boolean;
  }> = [
    {
      name: 'hard error quarantines at once',
      event: smtp(t0, hard),
      state: 'quarantined',
      count: 0,
      reason: 'user_unknown',
    },
    {
      name: 'first soft error: with_errors, counted',
      event: smtp(t0, full),
      state: 'with_errors',
      count: 1,
      reason: 'mailbox_full',
      counted: true,
    },
    {
      name: 'second soft error the same UTC day is not counted',
      current: row({ state: 'with_errors', errorCount: 1, lastErrorAt: t0, reason: 'mailbox_full' }),
      event: smtp(t0 + 3_600_000, full),
      state: 'with_errors',
      count: 1,
      reason: 'mailbox_full',
      counted: false,
    },
    {
      name: 'soft error on the next UTC day is counted',
      current: row({ state: 'with_errors', errorCount: 1, lastErrorAt: t0 }),
      event: smtp(t0 + day, throttled),
      state: 'with_errors',
      count: 2,
      reason: 'unreachable',
      counted: true,
    },
    {
      name: 'fifth counted soft error quarantines',
      current: row({ state: 'with_errors', errorCount: 4, lastErrorAt: t0 }),
      event: smtp(t0 + day, full),
      state: 'quarantined',
      count: 5,
      reason: 'mailbox_full',
    },
    {
      name: 'counter restarts after 10 days without error',
      current: row({ state: 'with_errors', errorCount: 4, lastErrorAt: t0 }),
      event: smtp(t0 + 10 * day, full),
      state: 'with_errors',
      count: 1,
      reason: 'mailbox_full',
      counted: true,
    },
    {
      name: 'allowlisted is never quarantined by a hard error',
      current: row({ state: 'allowlisted', reason: 'operator' }),
      event: smtp(t0, hard),
      state: 'allowlisted',
      count: 0,
      reason: 'operator',
    },
    {
      name: 'allowlisted is never quarantined by soft errors',
      current: row({ state: 'allowlisted', errorCount: 4, lastErrorAt: t0 - day, reason: 'operator' }),
      event: smtp(t0, full),
      state: 'allowlisted',
      count: 5,
      reason: 'operator',
    },
    {
      name: 'auto-reply: timeline only',
      current: row({ state: 'with_errors', errorCount: 2, lastErrorAt: t0 - day }),
      event: { email, at: t0, source: 'bounce', verdict: vacation },
      state: 'with_errors',
      count: 2,
      reason: null,
    },
    {
      name: 'complaint denylists',
      event: {
        email,
        at: t0,
        source: 'complaint',
        verdict: {
          category: 'feedback',
          reason: 'denylisted',
          type: 'ignored',
          ruleId: 'report.arf',
          packVersion: 'p1',
        },
      },
      state: 'denylisted',
      count: 0,
      reason: 'complaint',
    },
    {
      name: 'unsubscribe denylists even an allowlisted address',
      current: row({ state: 'allowlisted', reason: 'operator' }),
      event: { email, at: t0, source: 'unsubscribe' },
      state: 'denylisted',
      count: 0,
      reason: 'unsubscribe',
    },
    {
      name: 'denylisted stays denylisted on a hard error',
      current: row({ state: 'denylisted', reason: 'complaint' }),
      event: smtp(t0, hard),
      state: 'denylisted',
      count: 0,
      reason: 'complaint',
    },
    {
      name: 'quarantined stays quarantined (and keeps its reason) on soft errors',
      current: row({ state: 'quarantined', reason: 'user_unknown', lastErrorAt: t0 - day }),
      event: smtp(t0, full),
      state: 'quarantined',
      count: 1,
      reason: 'user_unknown',
    },
    {
      name: 'operator release',
      current: row({ state: 'quarantined', errorCount: 5, reason: 'mailbox_full', lastErrorAt: t0 }),
      event: { email, at: t0, source: 'operator', action: 'release' },
      state: 'valid',
      count: 0,
      reason: null,
    },
    {
      name: 'operator allowlist',
      current: row({ state: 'quarantined', errorCount: 5, reason: 'mailbox_full' }),
      event: { email, at: t0, source: 'operator', action: 'allowlist' },
      state: 'allowlisted',
      count: 0,
      reason: 'operator',
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { record, entry } = decideAddress(c.current, c.event, c.event.at, settings);
      expect(record).toMatchObject({ state: c.state, errorCount: c.count, reason: c.reason });
      expect(entry).toMatchObject({
        stateBefore: c.current?.state ?? 'valid',
        stateAfter: c.state,
        errorCount: c.count,
        source: c.event.source,
      });
      if (c.counted !== undefined) expect(entry.counted).toBe(c.counted);
    });
  }

  it('records which delivery, reply, rule and pack version on the timeline', () => {
    const { entry } = decideAddress(undefined, smtp(t0, hard), t0, settings);
    expect(entry).toMatchObject({
      deliveryId: 1,
      deliveryLogId: 7,
      replyText: 'reply',
      category: 'userunknown',
      ruleId: 'status-bad-mailbox',
      packVersion: '2025.06-1',
      type: 'hard',
    });
  });

  it('a mailbox full every hour for five days quarantines on the fifth day, not before', () => {
    const events = Array.from({ length: 5 * 24 }, (_, i) => smtp(Date.UTC(2026, 2, 1) + i * 3_600_000, full));
    const first4 = decideAll(undefined, events.slice(0, 4 * 24), t0, settings);
    expect(first4.record).toMatchObject({ state: 'with_errors', errorCount: 4 });
    const all = decideAll(undefined, events, t0, settings);
    expect(all.record).toMatchObject({ state: 'quarantined', errorCount: 5, reason: 'mailbox_full' });
    expect(all.entries.filter((e) => e.counted)).toHaveLength(5);
  });

  it('honours a configured threshold', () => {
    const { record } = decideAll(undefined, [smtp(t0, full), smtp(t0 + day, full)], t0, {
      ...settings,
      softErrorsToQuarantine: 2,
    });
    expect(record?.state).toBe('quarantined');
  });
});

describe('decideSweep', () => {
  it('releases a mailbox_full quarantine after 30 days, not before', () => {
    const quarantined = row({ state: 'quarantined', errorCount: 5, reason: 'mailbox_full', lastErrorAt: t0 });
    expect(decideSweep(quarantined, t0 + 29 * day, settings)).toBeUndefined();
    const event = decideSweep(quarantined, t0 + 30 * day, settings);
    expect(event).toMatchObject({ source: 'schedule', action: 'release' });
    expect(decideAddress(quarantined, event!, t0 + 30 * day, settings).record).toMatchObject({
      state: 'valid',
      errorCount: 0,
    });
  });

  it('never releases other quarantines', () => {
    expect(
      decideSweep(row({ state: 'quarantined', reason: 'user_unknown', lastErrorAt: t0 }), t0 + 365 * day, settings),
    ).toBeUndefined();
  });

  it('resets with_errors after 10 days without error', () => {
    const withErrors = row({ state: 'with_errors', errorCount: 3, reason: 'unreachable', lastErrorAt: t0 });
    expect(decideSweep(withErrors, t0 + 9 * day, settings)).toBeUndefined();
    const event = decideSweep(withErrors, t0 + 10 * day, settings)!;
    expect(decideAddress(withErrors, event, t0 + 10 * day, settings).record).toMatchObject({
      state: 'valid',
      errorCount: 0,
      reason: null,
    });
  });
});

describe('withheld events', () => {
  it('a hard reply withheld by the mass-rejection guard is on the timeline only', () => {
    const now = Date.UTC(2026, 3, 10, 6);
    const { record, entry } = decideAddress(
      undefined,
      {
        email: 'pat@bigisp.test',
        at: now,
        source: 'smtp',
        verdict: { type: 'hard', reason: 'user_unknown', category: 'userunknown', ruleId: 'x', packVersion: '1' },
        withheld: true,
        note: 'not applied: mass rejection',
      },
      now,
      settings,
    );
    expect(record.state).toBe('valid');
    expect(entry).toMatchObject({ stateBefore: 'valid', stateAfter: 'valid', counted: false, reason: 'user_unknown' });
  });
});
