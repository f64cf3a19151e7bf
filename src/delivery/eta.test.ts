import { describe, expect, it } from 'vitest';
import { compileRules } from '../shaping/compiled-rules.ts';
import type { MxRule } from '../shaping/rule-pack.ts';
import { estimateFinish, parseRuleOverride, type EtaInput } from './eta.ts';

const now = Date.UTC(2026, 5, 1, 12);
const hour = 3_600_000;

function rule(name: string, masks: string[], maxMessagesPerHour: number, extra: Partial<MxRule> = {}): MxRule {
  return {
    name,
    masks,
    publicIds: [],
    shared: false,
    perMxHost: false,
    maxConnections: 10,
    maxMessagesPerHour,
    maxMessagesPerConnection: 100,
    timeouts: {},
    tls: 'opportunistic',
    source: { file: 'test.yaml', line: 1 },
    ...extra,
  };
}

const rules = compileRules({
  version: 't',
  files: [],
  rules: [
    rule('gmail', ['*.google.test'], 1_000),
    rule('yahoo', ['*.yahoodns.test'], 500, { shared: true }),
    rule('generic', ['*'], 100_000, { perMxHost: true }),
  ],
  backoff: [],
});

function input(overrides: Partial<EtaInput> = {}): EtaInput {
  return {
    now,
    deliveryId: 9,
    validUntil: now + 24 * hour,
    domains: [
      { domain: 'gmail.test', pending: 3_000, mxHost: 'gmail-smtp-in.l.google.test', sent: 0, deferred: 0 },
      { domain: 'yahoo.test', pending: 1_000, mxHost: 'mta5.am0.yahoodns.test', sent: 0, deferred: 0 },
      { domain: 'small.test', pending: 50, mxHost: null, sent: 0, deferred: 0 },
    ],
    rules,
    sources: [{ publicId: 0, weight: 1 }],
    ratePeriodMs: hour,
    backoffFactors: new Map(),
    ...overrides,
  };
}

describe('estimateFinish', () => {
  it('lists each domain of a provider once, however many domains it hosts and sources share its rate key', () => {
    // 20,000 companies whose mail Yahoo hosts (a shared rule: one rate key for both public ids), sent from two.
    const domains = Array.from({ length: 20_000 }, (_, i) => ({
      domain: `company${i}.test`,
      pending: 2,
      mxHost: 'mta5.am0.yahoodns.test',
      sent: 0,
      deferred: 0,
    }));
    const eta = estimateFinish(
      input({
        domains,
        sources: [
          { publicId: 1, weight: 1 },
          { publicId: 2, weight: 1 },
        ],
      }),
    );
    expect(eta.groups).toHaveLength(1);
    expect(eta.groups[0]).toMatchObject({ rateKey: 'yahoo|shared', pending: 40_000, hours: 80 });
    expect(eta.groups[0]!.domains).toEqual(domains.map((d) => d.domain).sort());
  });

  it('finishes when the slowest rate key drains, and names it', () => {
    const eta = estimateFinish(input());
    expect(eta).toMatchObject({ pending: 4_050, hours: 3, finishAt: now + 3 * hour, expiring: 0 });
    expect(eta.boundBy).toMatchObject({ rule: 'gmail', rateKey: 'gmail|id0', pending: 3_000, messagesPerHour: 1_000 });
    expect(eta.groups.map((g) => [g.rateKey, g.hours])).toEqual([
      ['gmail|id0', 3],
      ['yahoo|shared', 2],
      ['generic|id0|small.test', 0],
    ]);
  });

  it('splits per public id unless the rule is shared; backoffs and deferrals slow a key', () => {
    const two = estimateFinish(
      input({
        sources: [
          { publicId: 1, weight: 1 },
          { publicId: 2, weight: 1 },
        ],
      }),
    );
    // gmail: 1,500 per id at 1,000/h each; yahoo: one shared budget of 500/h for 1,000.
    expect(two.groups.map((g) => [g.rateKey, g.pending, g.hours])).toEqual([
      ['yahoo|shared', 1_000, 2],
      ['gmail|id1', 1_500, 1.5],
      ['gmail|id2', 1_500, 1.5],
      ['generic|id1|small.test', 25, 0],
      ['generic|id2|small.test', 25, 0],
    ]);
    const slowed = estimateFinish(
      input({
        backoffFactors: new Map([['yahoo|shared', 0.25]]),
        domains: [
          { domain: 'gmail.test', pending: 1_000, mxHost: 'gmail-smtp-in.l.google.test', sent: 300, deferred: 300 },
        ],
      }),
    );
    // Half the attempts deferred: 500 accepted per hour.
    expect(slowed.boundBy).toMatchObject({ rateKey: 'gmail|id0', acceptedShare: 0.5, messagesPerHour: 500 });
    expect(slowed.hours).toBe(2);
  });

  it('counts what cannot go before the validity ends, and recomputes under a what-if rate', () => {
    const late = estimateFinish(input({ validUntil: now + hour }));
    expect(late.expiring).toBe(2_000 + 500);
    const whatIf = estimateFinish(input({ ruleOverrides: new Map([['gmail', 6_000]]) }));
    expect(whatIf.boundBy).toMatchObject({ rule: 'yahoo' });
    expect(whatIf.hours).toBe(2);
    expect(estimateFinish(input({ domains: [] }))).toMatchObject({ pending: 0, finishAt: null, boundBy: null });
  });

  it('lets the messages of deliveries started earlier go first on the rate keys they share', () => {
    const behind = estimateFinish(input({ ahead: new Map([['yahoo|shared', 1_500]]) }));
    // yahoo: 1,500 of another delivery, then this one's 1,000, at 500/h: 5 h.
    expect(behind.boundBy).toMatchObject({ rateKey: 'yahoo|shared', pending: 1_000, ahead: 1_500 });
    expect(behind.hours).toBe(5);
    expect(behind.groups.find((g) => g.rateKey === 'gmail|id0')).toMatchObject({ ahead: 0, hours: 3 });
    // In 4 h yahoo sends 2,000: 1,500 of the other delivery, 500 of this one; 500 expire.
    expect(
      estimateFinish(input({ validUntil: now + 4 * hour, ahead: new Map([['yahoo|shared', 1_500]]) })).expiring,
    ).toBe(500);
  });

  it('parses RULE.maxMessagesPerHour=N', () => {
    expect(parseRuleOverride('gmail.maxMessagesPerHour=6000')).toEqual({ rule: 'gmail', maxMessagesPerHour: 6_000 });
    expect(parseRuleOverride('gmail.maxConnections=3')).toMatch(/expected RULE.maxMessagesPerHour=N/);
  });
});
