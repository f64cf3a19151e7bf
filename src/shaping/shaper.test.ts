import { describe, expect, it } from 'vitest';
import { manualClock } from '../common/clock.ts';
import { compileAffinities } from './affinity.ts';
import { BackoffTracker } from './backoff.ts';
import { DomainBreaker } from './breaker.ts';
import { RulesHolder } from './compiled-rules.ts';
import { createMemoryThrottle } from './memory-throttle.ts';
import { loadRuleTexts } from './rule-loader.ts';
import { Shaper } from './shaper.ts';
import { snapshotRowLimit } from './snapshot.ts';
import { formatStatsView, mergeSnapshots } from './stats-view.ts';
import { compileBounceRules } from '../bounce/classifier.ts';
import { loadBouncePack, SHIPPED_BOUNCE_PACK } from '../bounce/rule-pack.ts';
import { createReplyClassifier } from '../bounce/reply-classifier.ts';
import type { SmtpReply } from '../bounce/smtp-reply.ts';

const pack = `
rules:
  - name: slow
    mask: "*.slow.test"
    maxConnections: 2
    maxMessagesPerHour: 3600
    maxMessagesPerConnection: 5
    burst: 2
    timeouts: { connect: 2s }
    tls: required
  - name: generic
    mask: "*"
    perMxHost: true
    maxConnections: 4
    maxMessagesPerHour: 36000
    burst: 3
backoff:
  # Yahoo: "421 4.7.0 [TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume or user complaints"
  - name: rate-limited-421
    reply: "^421 4\\\\.7\\\\.0\\\\b"
    factor: 0.5
    duration: 30m
  - name: too-many-connections
    reply: "too many connections"
    factor: 0.5
    duration: 10m
    threshold: 2
    limits: [connections]
`;

async function compiled(text = pack) {
  const result = await loadRuleTexts([{ file: 'test.yaml', text }]);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.rules;
}

const packRules = await compiled();

const defaults = { connectTimeoutMs: 30_000, commandTimeoutMs: 60_000, dataTimeoutMs: 600_000, opportunisticTls: true };
const path = { mxHost: 'mx1.slow.test', mxIp: '192.0.2.1', publicId: 1 };
const yahoo421 = {
  code: 421,
  enhanced: '4.7.0',
  text: '[TSS04] Messages from 203.0.113.5 temporarily deferred due to unexpected volume or user complaints',
};

function shaper(clock = manualClock(0)) {
  return {
    clock,
    shaper: new Shaper({
      rules: new RulesHolder(packRules),
      backend: createMemoryThrottle(),
      clock,
      defaults,
      nodeId: 'n1',
    }),
  };
}

describe('shaper', () => {
  it('gives each MX host of a perMxHost rule its own quota, and a provider rule one quota for all its hosts', async () => {
    const { shaper: s } = shaper();
    const small = (host: string) => ({ mxHost: host, mxIp: '192.0.2.9', publicId: 1 });
    expect((await s.acquireMessages(small('mx.one.example'), 3)).granted).toBe(3);
    expect((await s.acquireMessages(small('mx.one.example'), 1)).granted).toBe(0);
    // Another small domain is not held back by the first one's quota.
    expect((await s.acquireMessages(small('mx.two.example'), 3)).granted).toBe(3);
    // The provider rule (burst 2) is shared by all of its MX hosts.
    expect((await s.acquireMessages({ ...path, mxHost: 'mx1.slow.test' }, 2)).granted).toBe(2);
    expect((await s.acquireMessages({ ...path, mxHost: 'mx2.slow.test' }, 1)).granted).toBe(0);
  });

  it('answers the MTA connection policy from the MX host rule', () => {
    const { shaper: s } = shaper();
    expect(s.connectionPolicy(1).limitsFor('MX1.SLOW.TEST.')).toEqual({
      rule: 'slow',
      maxConnections: 2,
      maxMessagesPerConnection: 5,
      timeouts: { connectTimeoutMs: 2_000, commandTimeoutMs: 60_000, dataTimeoutMs: 600_000 },
      tls: 'required',
    });
    expect(s.limitsFor('mx.other.test').tls).toBe('opportunistic');
  });

  it('never grants more sessions than maxConnections and releases leases once', async () => {
    const { shaper: s } = shaper();
    const decisions = await Promise.all([1, 2, 3].map(() => s.acquireConnection(path)));
    expect(decisions.map((d) => d.kind)).toEqual(['granted', 'granted', 'wait']);
    const lease = decisions[0]!.kind === 'granted' ? decisions[0]!.lease : undefined;
    await s.releaseConnection(lease!);
    await s.releaseConnection(lease!);
    expect((await s.acquireConnection(path)).kind).toBe('granted');
    expect((await s.acquireConnection(path)).kind).toBe('wait');
    const snapshot = await s.snapshot();
    expect(snapshot.paths[0]).toMatchObject({ rule: 'slow', openConnections: 2, binding: 'maxConnections' });
  });

  it('forgets what no snapshot shows any more: old denials and waiting counts, quiet backoff matches', async () => {
    const { shaper: s, clock } = shaper();
    const tooMany = { code: 421, enhanced: '4.7.0', text: 'too many connections from your IP' };
    for (let i = 0; i < 1_000; i++) {
      const host = { mxHost: `mx.company${i}.example`, mxIp: `10.0.${i >> 8}.${i & 255}`, publicId: 1 };
      await s.acquireMessages(host, 10); // over the burst: denied by maxMessagesPerHour
      s.reportWaiting(host, 7);
      s.recordReply(host, `company${i}.example`, tooMany); // below its threshold of 2
    }
    await s.snapshot();
    expect(s.pathsRemembered).toBe(1_000);
    expect(s.backoff.counting).toBe(1_000);
    // A minute on, the snapshot shows none of them (recentMs); the backoff rule's window is 60 min.
    clock.advance(61 * 60_000);
    await s.snapshot();
    expect(s.pathsRemembered).toBe(0);
    expect(s.backoff.counting).toBe(0);
  });

  it('halves the rate on a 421 4.7.0, shows it with evidence, and reverts after 30 minutes', async () => {
    const { shaper: s, clock } = shaper();
    const rule = s.ruleFor(path.mxHost, 1);
    expect(s.effectiveRate(rule, 1, path.mxHost)).toBe(3_600);
    s.recordReply(path, 'slow.test', yahoo421);
    expect(s.effectiveRate(rule, 1, path.mxHost)).toBe(1_800);
    // Burst 2 at 1,800/h: the third permit waits 2 s instead of 1 s.
    expect((await s.acquireMessages(path, 3)).granted).toBe(2);
    expect(await s.acquireMessages(path, 1)).toMatchObject({
      granted: 0,
      retryInMs: 2_000,
      limit: 'maxMessagesPerHour',
    });
    const during = await s.snapshot();
    expect(during.backoffs).toHaveLength(1);
    expect(during.backoffs[0]).toMatchObject({
      rule: 'rate-limited-421',
      key: 'slow|id1',
      factor: 0.5,
      evidence: { matches: 1 },
    });
    expect(during.backoffs[0]!.evidence.replies[0]).toContain('421 4.7.0 [TSS04]');
    expect(during.rules[0]).toMatchObject({ rateKey: 'slow|id1', binding: 'backoff', backoffs: ['rate-limited-421'] });
    clock.advance(30 * 60_000);
    expect(s.expireBackoffs().map((e) => e.kind)).toEqual(['reverted']);
    expect(s.effectiveRate(rule, 1, path.mxHost)).toBe(3_600);
    expect((await s.snapshot()).backoffs).toEqual([]);
  });

  it('reduces connections after repeated "too many connections" greetings', () => {
    const { shaper: s } = shaper();
    const reply = { code: 421, enhanced: null, text: 'mwinf5c10 ME Too many connections, slow down. OFR005_104 [104]' };
    s.recordConnection(path, 'refused', reply);
    expect(s.limitsFor(path.mxHost, 1).maxConnections).toBe(2);
    s.recordConnection(path, 'refused', reply);
    expect(s.limitsFor(path.mxHost, 1).maxConnections).toBe(1);
  });

  it('keeps counters and throttle state across a reload that changes the limits', async () => {
    const { shaper: s } = shaper();
    const lease = await s.acquireConnection(path);
    s.recordReply(path, 'slow.test', { code: 250, enhanced: '2.0.0', text: 'ok' });
    s.rules.swap(await compiled(pack.replace('maxConnections: 2', 'maxConnections: 1')));
    expect(s.limitsFor(path.mxHost, 1).maxConnections).toBe(1);
    // The lease taken before the reload still counts against the new limit.
    expect((await s.acquireConnection(path)).kind).toBe('wait');
    const snapshot = await s.snapshot();
    expect(snapshot.paths[0]).toMatchObject({ messages: 1, openConnections: 1, limits: { maxConnections: 1 } });
    if (lease.kind === 'granted') await s.releaseConnection(lease.lease);
  });
});

describe('backoff tracker', () => {
  it('compounds only when still told to slow down a window after the last cut, floored', async () => {
    const rules = (await compiled()).backoff;
    const tracker = new BackoffTracker({ enabled: true, minFactor: 0.25 });
    expect(tracker.observe('k', yahoo421, rules, 0).map((e) => e.kind)).toEqual(['applied']);
    expect(tracker.observe('k', yahoo421, rules, 1_000).map((e) => e.kind)).toEqual(['extended']);
    expect(tracker.factors('k', 1_000).rate).toBe(0.5);
    expect(tracker.observe('k', yahoo421, rules, 11 * 60_000).map((e) => e.kind)).toEqual(['compounded']);
    expect(tracker.observe('k', yahoo421, rules, 22 * 60_000).map((e) => e.kind)).toEqual(['extended']);
    expect(tracker.factors('k', 22 * 60_000).rate).toBe(0.25);
    expect(tracker.factors('other', 0).rate).toBe(1);
    expect(tracker.observe('k', { code: 250, enhanced: null, text: 'ok' }, rules, 23 * 60_000)).toEqual([]);
  });

  it('keeps each rate key its own backoffs, and reverts each at its own end, extensions included', async () => {
    const rules = (await compiled()).backoff;
    const tracker = new BackoffTracker({ enabled: true, minFactor: 1 / 16 });
    tracker.observe('generic|id1|mx.a.example', yahoo421, rules, 0); // until 30 min
    tracker.observe('generic|id1|mx.b.example', yahoo421, rules, 10 * 60_000); // until 40 min
    tracker.observe('generic|id1|mx.a.example', yahoo421, rules, 20 * 60_000); // a: compounded, until 50 min
    expect(tracker.factors('generic|id1|mx.a.example', 20 * 60_000).rate).toBe(0.25);
    expect(tracker.factors('generic|id1|mx.c.example', 0).rate).toBe(1);
    expect(tracker.expire(35 * 60_000)).toEqual([]);
    expect(tracker.expire(45 * 60_000).map((e) => [e.kind, e.backoff.key])).toEqual([
      ['reverted', 'generic|id1|mx.b.example'],
    ]);
    expect(tracker.active(45 * 60_000).map((b) => b.key)).toEqual(['generic|id1|mx.a.example']);
    expect(tracker.expire(50 * 60_000).map((e) => e.backoff.key)).toEqual(['generic|id1|mx.a.example']);
    expect(tracker.active(50 * 60_000)).toEqual([]);
    // A new backoff after everything expired is reverted in its turn.
    tracker.observe('generic|id1|mx.c.example', yahoo421, rules, 60 * 60_000);
    expect(tracker.expire(90 * 60_000).map((e) => e.backoff.key)).toEqual(['generic|id1|mx.c.example']);
  });
});

describe('error-density breaker', async () => {
  // The verdict the MTA computes for each reply: the shipped rules, local failures by defaultVerdict.
  const bounceRules = compileBounceRules(await loadBouncePack([SHIPPED_BOUNCE_PACK]));
  const verdictOf = createReplyClassifier(() => bounceRules);

  it('is not tripped by greylisting, which defers every first attempt, but is by refused connections', () => {
    const { shaper: s } = shaper();
    const grey: SmtpReply = {
      code: 451,
      enhanced: '4.7.1',
      text: 'Greylisted, see http://postgrey.schweikert.ch/help/example.test.html',
    };
    const refused: SmtpReply = {
      code: null,
      enhanced: null,
      text: 'connect ECONNREFUSED 192.0.2.7:25',
      local: 'connection_refused',
    };
    for (let i = 0; i < 400; i += 1)
      s.recordReply({ ...path, mxHost: 'mx.grey.test' }, 'grey.test', grey, verdictOf(grey));
    expect(s.checkDomain('grey.test').kind).toBe('open');
    for (let i = 0; i < 400; i += 1)
      s.recordReply({ ...path, mxHost: 'mx.down.test' }, 'down.test', refused, verdictOf(refused));
    expect(s.checkDomain('down.test').kind).toBe('suspended');
  });

  it('decides greylisting from the bounce qualification, not the reply text: a Postfix postgrey 450 4.2.0 does not count, 421 rate limits do', () => {
    const { shaper: s } = shaper();
    const postgrey: SmtpReply = {
      code: 450,
      enhanced: '4.2.0',
      text: '<x@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html',
    };
    const rateLimited: SmtpReply = { code: 421, enhanced: '4.7.0', text: 'Rate limited, try again later' };
    expect(verdictOf(postgrey)).toMatchObject({ category: 'onhold', ruleId: 'greylisted' });
    expect(verdictOf(rateLimited).category).toBe('ratelimited');
    for (let i = 0; i < 400; i += 1)
      s.recordReply({ ...path, mxHost: 'mx.example.com' }, 'example.com', postgrey, verdictOf(postgrey));
    expect(s.checkDomain('example.com').kind).toBe('open');
    for (let i = 0; i < 400; i += 1)
      s.recordReply({ ...path, mxHost: 'mx.limited.test' }, 'limited.test', rateLimited, verdictOf(rateLimited));
    const check = s.checkDomain('limited.test');
    expect(check.kind).toBe('suspended');
    if (check.kind === 'suspended')
      expect(check.suspension.evidence.sampleReplies).toEqual(['421 4.7.0 Rate limited, try again later']);
    // Without a verdict a failure counts: the breaker never reads the text.
    for (let i = 0; i < 400; i += 1)
      s.recordReply({ ...path, mxHost: 'mx.unqualified.test' }, 'unqualified.test', postgrey);
    expect(s.checkDomain('unqualified.test').kind).toBe('suspended');
  });

  it('suspends a domain with ≥300 messages and ≥90 % errors for 3 hours', () => {
    const breaker = new DomainBreaker();
    const reply = { code: 550, enhanced: '5.7.1', text: 'Service unavailable; client host blocked' };
    let tripped;
    for (let i = 0; i < 299; i += 1) tripped ??= breaker.record('blocked.test', i % 10 === 0, reply, i * 1_000);
    expect(tripped).toBeUndefined();
    tripped = breaker.record('blocked.test', false, reply, 300_000);
    expect(tripped).toMatchObject({
      domain: 'blocked.test',
      until: 300_000 + 3 * 3_600_000,
      evidence: { messages: 300, errors: 270 },
    });
    expect(tripped!.evidence.sampleReplies).toEqual(['550 5.7.1 Service unavailable; client host blocked']);
    const check = breaker.check('BLOCKED.test', 400_000);
    expect(check.kind).toBe('suspended');
    if (check.kind === 'suspended') expect(check.message).toContain('270 errors in 300 messages (90%)');
    expect(breaker.check('blocked.test', 300_000 + 3 * 3_600_000).kind).toBe('open');
  });

  it('does not trip below the error ratio', () => {
    const breaker = new DomainBreaker();
    let tripped;
    for (let i = 0; i < 1_000; i += 1) tripped ??= breaker.record('mixed.test', i % 5 === 0, undefined, i);
    expect(tripped).toBeUndefined();
  });
});

describe('affinities', () => {
  const table = compileAffinities([
    {
      name: 'marketing',
      addresses: [
        { address: '10.0.0.1', heloName: 'a.example', publicId: 1, weight: 5 },
        { address: '10.0.0.2', heloName: 'b.example', publicId: 2, weight: 5 },
        { address: '10.0.0.3', heloName: 'c.example', publicId: 3, weight: 1, excludeDomains: ['*.fr'] },
        { address: '10.0.0.4', heloName: 'd.example', publicId: 4, weight: 5, includeDomains: ['gmail.com'] },
      ],
    },
  ]);

  function shares(domain: string, unreachable?: Set<string>): Record<string, number> {
    const counts: Record<string, number> = {};
    const steps = 1_100;
    for (let i = 0; i < steps; i += 1) {
      const choice = table.choose(
        { affinity: 'marketing', domain, ...(unreachable ? { unreachable } : {}) },
        () => (i + 0.5) / steps,
      );
      if (choice.kind !== 'chosen') throw new Error(choice.message);
      counts[choice.source.address] = (counts[choice.source.address] ?? 0) + 1 / steps;
    }
    return Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Math.round(v * 100)]));
  }

  it('splits 5/5/1 as 45/45/10 % and re-normalizes without an unreachable address', () => {
    expect(shares('example.com')).toEqual({ '10.0.0.1': 45, '10.0.0.2': 45, '10.0.0.3': 9 });
    expect(shares('example.com', new Set(['10.0.0.2']))).toEqual({ '10.0.0.1': 83, '10.0.0.3': 17 });
  });

  it('applies include and exclude domains', () => {
    expect(Object.keys(shares('orange.fr')).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(Object.keys(shares('gmail.com')).sort()).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  });

  it('turns an unknown affinity or an empty pool into a typed outcome', () => {
    const unknown = table.choose({ affinity: 'transactional', domain: 'example.com' }, () => 0);
    expect(unknown).toMatchObject({ kind: 'unknown_affinity', affinity: 'transactional' });
    if (unknown.kind === 'unknown_affinity') expect(unknown.message).toContain('known: marketing');
    const none = table.choose(
      { affinity: 'marketing', domain: 'orange.fr', unreachable: new Set(['10.0.0.1', '10.0.0.2']) },
      () => 0,
    );
    expect(none.kind).toBe('no_source');
    expect(compileAffinities([]).choose({ affinity: null, domain: 'x.test' }, () => 0)).toMatchObject({
      kind: 'chosen',
      source: { publicId: 0 },
    });
  });

  it('lists at most snapshotRowLimit paths and rate keys, keeping the one held back and counting the others', async () => {
    const { shaper: s } = shaper();
    // A list of small company domains: every MX host its own path and (perMxHost) rate key.
    for (let i = 0; i < snapshotRowLimit + 99; i++) {
      const path = { mxHost: `mx.company${i}.example`, mxIp: `10.0.${i >> 8}.${i & 255}`, publicId: 1 };
      s.recordConnection(path, 'accepted');
      s.recordReply(path, `company${i}.example`, { code: 250, enhanced: '2.0.0', text: 'ok' });
    }
    // One more host, last in path and rate key order, at its maxConnections (4): the row to see.
    const full = { mxHost: 'mx.full.example', mxIp: '10.9.9.9', publicId: 1 };
    for (let i = 0; i < 4; i++) expect((await s.acquireConnection(full)).kind).toBe('granted');

    const snapshot = await s.snapshot();
    expect(snapshot.paths).toHaveLength(snapshotRowLimit);
    expect(snapshot.rules).toHaveLength(snapshotRowLimit);
    expect(snapshot.omitted).toEqual({ paths: 100, rules: 100, throttledPaths: 0 });
    expect(snapshot.paths.find((p) => p.mxHost === 'mx.full.example')?.binding).toBe('maxConnections');
    expect(snapshot.rules.find((r) => r.rateKey === 'generic|id1|mx.full.example')?.binding).toBe('maxConnections');

    const view = mergeSnapshots([snapshot, { ...snapshot, nodeId: 'n2' }], 0);
    expect(view.omitted).toEqual({ paths: 200, rules: 200, throttledPaths: 0 });
    expect(formatStatsView(view)).toContain(
      `  200 more paths not listed: each MTA node lists its ${snapshotRowLimit} most relevant (held back by a limit, then waiting, open, busiest)`,
    );
  });
});
