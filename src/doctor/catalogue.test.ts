import { describe, expect, it } from 'vitest';
import { diagnose } from './checks.ts';
import { contentCheck, measureContent } from './check-content.ts';
import { dnsCheck } from './check-dns.ts';
import { expiredCheck } from './check-expired.ts';
import { listHealthCheck } from './check-list-health.ts';
import { messagesCheck } from './check-messages.ts';
import { midsourcingCheck } from './check-midsourcing.ts';
import { parsePreparationError, preparationCheck } from './check-preparation.ts';
import { referencesCheck } from './check-references.ts';
import { reputationCheck } from './check-reputation.ts';
import { targetCheck } from './check-target.ts';
import { unreachableCheck } from './check-unreachable.ts';
import { workflowsCheck } from './check-workflows.ts';
import { doctorSettings } from './finding.ts';
import { replyKind } from './replies.ts';
import type { DeliveryFacts, DoctorSnapshot, ReplyGroup, WorkflowFacts } from './snapshot.ts';
import { parseConfig } from '../config/load.ts';
import type { OutboundStatus } from '../midsourcing/status.ts';

// The troubleshooting catalogue's causes, each on a small hand-built snapshot: pure, time passed in.

const now = Date.UTC(2026, 5, 1, 12);
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
const settings = doctorSettings(parseConfig({}, 'test'));

function snapshot(overrides: Partial<DoctorSnapshot> = {}): DoctorSnapshot {
  return {
    takenAt: now,
    deliveries: [],
    shaping: { takenAt: now, nodes: [], rules: [], paths: [], backoffs: [], suspensions: [] },
    workflows: [],
    tracking: { watermark: 0, lastEventId: 0, oldestPendingAt: null },
    database: {
      dialect: 'sqlite',
      location: 'test',
      sizeBytes: 1 << 20,
      freelistPages: 0,
      freeBytes: 0,
      pageSize: 4096,
      autoVacuum: 'incremental',
      tables: [],
      lockWaits: [],
      lastMaintenance: null,
    },
    retention: {
      deliveryLogs: { purgeable: 0, capped: false, oldestAt: null },
      trackingEvents: { purgeable: 0, oldestAt: null },
    },
    midsourcing: [],
    configurationWarnings: [],
    webhooks: [],
    imports: [],
    configuration: { affinities: [], localAddresses: null, resolverServers: [], midPeers: [] },
    messages: { claims: [], overdue: [] },
    ...overrides,
  };
}

function delivery(overrides: Partial<DeliveryFacts> = {}): DeliveryFacts {
  return {
    id: 7,
    name: 'Spring',
    state: 'in_progress',
    scope: 'active',
    affinity: null,
    listId: 1,
    lastError: null,
    finishedAt: null,
    target: { count: 1000, excluded: 0, exclusions: {} },
    content: { htmlBytes: 4000, textBytes: 500, links: 4, images: 2 },
    replies: [],
    feedback: { complaints: 0, unsubscribes: 0 },
    executionPeer: null,
    receivedFrom: null,
    updatedAt: now - hour,
    scheduledAt: null,
    startedAt: now - hour,
    validUntil: now + 5 * day,
    counts: { total: 1000, sent: 600, failed: 0, ignored: 0, pending: 400, cancelled: 0 },
    failedByReason: {},
    duePending: 0,
    lastLogUpdateAt: now - minute,
    pendingByDomain: [],
    ...overrides,
  };
}

function group(overrides: Partial<ReplyGroup>): ReplyGroup {
  return {
    status: 'pending',
    domain: 'example.test',
    mxHost: 'mx.example.test',
    code: null,
    enhanced: null,
    reason: null,
    category: null,
    count: 50,
    sample: '',
    lastAt: now - minute,
    ...overrides,
  };
}

const spamhaus = group({
  domain: 'bigmail.test',
  mxHost: 'mx1.bigmail.test',
  code: 554,
  enhanced: '5.7.1',
  status: 'failed',
  reason: 'refused',
  category: 'blocked',
  count: 120,
  sample: 'Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org',
});

describe('replyKind', () => {
  it.each([
    [spamhaus, 'reputation'],
    [group({ code: 550, enhanced: '5.7.1', sample: 'Message rejected due to local policy' }), 'reputation'],
    [group({ code: 421, enhanced: '4.7.0', sample: 'Too many messages, slow down' }), 'throttling'],
    [group({ code: 451, enhanced: '4.7.1', sample: 'Greylisted, try again later' }), 'throttling'],
    [group({ code: null, sample: 'connect ECONNREFUSED 127.0.0.1:2525', category: 'networkerror' }), 'unreachable'],
    [group({ code: null, sample: 'Connection timeout', category: 'networkerror' }), 'unreachable'],
    [group({ code: null, sample: 'STARTTLS failed', category: 'failedstarttls' }), 'unreachable'],
    [
      group({ code: 421, enhanced: '4.3.2', sample: 'Service not available, closing transmission channel' }),
      'unreachable',
    ],
    [group({ code: null, enhanced: '4.4.3', sample: 'MX lookup for x.test failed: ESERVFAIL' }), 'dns'],
    [group({ code: null, enhanced: '5.1.2', sample: 'domain x.test does not exist (NXDOMAIN)' }), 'dns'],
    [group({ code: null, enhanced: '5.1.10', sample: 'x.test publishes a null MX' }), 'dns'],
    [group({ code: 550, enhanced: '5.1.1', sample: 'User unknown' }), 'other'],
    [
      group({
        code: null,
        sample: 'the delivery validity period ended before the message could be delivered',
        category: 'expired',
      }),
      'other',
    ],
  ])('%#: %j is %s', (reply, kind) => {
    expect(replyKind(reply).kind).toBe(kind);
  });
});

describe('reputation', () => {
  it('names the blocklist refusal, the MX, the listed source address and the fix', () => {
    const shot = snapshot({
      deliveries: [delivery({ affinity: 'bulk', replies: [spamhaus] })],
      configuration: {
        affinities: [
          {
            name: 'bulk',
            addresses: [{ address: '192.0.2.10', heloName: 'out1.example.com', publicId: 1, weight: 1 }],
          },
        ],
        localAddresses: null,
        resolverServers: [],
        midPeers: [],
      },
    });
    const [finding] = reputationCheck.run(shot, now, settings);
    expect(finding).toMatchObject({
      check: 'reputation',
      severity: 'critical',
      subject: 'delivery 7',
      impact: 120,
      evidence: {
        messages: 120,
        failed: 120,
        listedIps: ['192.0.2.10'],
        byDestination: [expect.objectContaining({ destination: 'mx1.bigmail.test', count: 120 })],
        sources: [expect.objectContaining({ publicId: 1, address: '192.0.2.10', affinity: 'bulk' })],
      },
    });
    expect(finding!.fix).toContain('shaping.affinities');
    expect(finding!.fix).toContain('herald delivery pause 7');
    expect(finding!.logs).toBe('herald delivery logs 7 --mx mx1.bigmail.test --enhanced 5.7.1');
  });

  it('leaves throttling, user-unknown and small counts alone', () => {
    const shot = snapshot({
      deliveries: [
        delivery({
          replies: [
            group({ code: 421, enhanced: '4.7.0', sample: 'Too many messages, slow down', count: 500 }),
            group({ code: 550, enhanced: '5.1.1', sample: 'User unknown', status: 'failed', count: 80 }),
            { ...spamhaus, count: 3 },
          ],
        }),
      ],
    });
    expect(reputationCheck.run(shot, now, settings)).toEqual([]);
  });
});

describe('expired', () => {
  const expiredGroup = (domain: string, count: number) =>
    group({
      status: 'failed',
      domain,
      mxHost: null,
      category: 'expired',
      reason: 'expired',
      sample: 'the delivery validity period ended before the message could be delivered',
      count,
    });

  it('explains messages that expired waiting, per domain, as a validity too short for the pace', () => {
    const shot = snapshot({
      deliveries: [
        delivery({
          state: 'finished',
          scope: 'asked',
          startedAt: now - 2 * hour,
          validUntil: now - hour,
          replies: [
            expiredGroup('paced.test', 60),
            expiredGroup('other.test', 20),
            group({ status: 'failed', sample: 'connect ECONNREFUSED 10.0.0.1:25', category: 'networkerror' }),
          ],
        }),
      ],
    });
    const findings = expiredCheck.run(shot, now, settings);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      severity: 'warning',
      impact: 80,
      evidence: { expired: 80, byDomain: { 'paced.test': 60, 'other.test': 20 } },
      logs: 'herald delivery logs 7 --status failed --reason expired',
    });
    expect(findings[0]!.symptom).toContain('60 to paced.test, 20 to other.test');
    expect(findings[0]!.cause).toContain('1 h from the start');
    // The same messages are not reported as an unreachable host.
    expect(unreachableCheck.run(shot, now, settings).map((f) => f.evidence.mxHost)).toEqual(['mx.example.test']);
  });

  it('says nothing below the minimum count', () => {
    const shot = snapshot({ deliveries: [delivery({ replies: [expiredGroup('paced.test', 3)] })] });
    expect(expiredCheck.run(shot, now, settings)).toEqual([]);
  });
});

describe('unreachable', () => {
  it('counts refusals and timeouts per MX host, apart from throttling', () => {
    const shot = snapshot({
      deliveries: [
        delivery({
          replies: [
            group({
              domain: 'down.test',
              mxHost: 'mx.down.test',
              sample: 'connect ECONNREFUSED 127.0.0.1:1',
              count: 40,
            }),
            group({ domain: 'down.test', mxHost: 'mx.down.test', sample: 'Connection timeout', count: 15 }),
            group({
              domain: 'busy.test',
              mxHost: 'mx.busy.test',
              code: 421,
              enhanced: '4.7.0',
              sample: 'slow down',
              count: 90,
            }),
          ],
        }),
      ],
    });
    const findings = unreachableCheck.run(shot, now, settings);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({
      severity: 'warning',
      impact: 55,
      evidence: { mxHost: 'mx.down.test', byKind: { refused: 40, timeout: 15 }, pending: 55, domains: ['down.test'] },
      logs: 'herald delivery logs 7 --mx mx.down.test',
    });
    expect(findings[0]!.cause).toContain('not throttling');
  });

  it('is critical once messages expired on it', () => {
    const shot = snapshot({
      deliveries: [delivery({ replies: [group({ status: 'failed', sample: 'connect ECONNREFUSED 10.0.0.1:25' })] })],
    });
    expect(unreachableCheck.run(shot, now, settings)[0]!.severity).toBe('critical');
  });
});

describe('dns', () => {
  it('reports SERVFAIL per domain with the resolver used; NXDOMAIN as info', () => {
    const shot = snapshot({
      deliveries: [
        delivery({
          replies: [
            group({
              domain: 'broken.test',
              mxHost: null,
              enhanced: '4.4.3',
              sample: 'MX lookup for broken.test failed: ESERVFAIL',
              count: 60,
            }),
            group({
              domain: 'gone.test',
              mxHost: null,
              status: 'failed',
              enhanced: '5.1.2',
              sample: 'domain gone.test does not exist (NXDOMAIN)',
              count: 12,
            }),
          ],
        }),
      ],
      configuration: { affinities: [], localAddresses: null, resolverServers: ['10.0.0.53'], midPeers: [] },
    });
    const findings = dnsCheck.run(shot, now, settings);
    expect(findings.map((f) => [f.severity, f.evidence.domain])).toEqual([
      ['warning', 'broken.test'],
      ['info', 'gone.test'],
    ]);
    expect(findings[0]).toMatchObject({
      evidence: { byKind: { servfail: 60 }, resolver: ['10.0.0.53'] },
      logs: 'herald delivery logs 7 --domain broken.test',
    });
    expect(findings[0]!.symptom).toContain('10.0.0.53');
    expect(findings[0]!.fix).toContain('mta.resolverServers');
  });

  it('names a domain the MTA still sends to with its last good DNS answer, and until when', () => {
    const shot = snapshot({
      shaping: {
        takenAt: now,
        nodes: [],
        rules: [],
        paths: [],
        backoffs: [],
        suspensions: [],
        dnsStale: [
          {
            name: 'broken.test',
            nodeId: 'mta-1',
            reason: 'MX lookup for broken.test failed: ESERVFAIL',
            since: now - hour,
            until: now + 23 * hour,
          },
        ],
      },
      configuration: { affinities: [], localAddresses: null, resolverServers: ['10.0.0.53'], midPeers: [] },
    });
    expect(dnsCheck.run(shot, now, settings)).toEqual([
      expect.objectContaining({
        severity: 'warning',
        subject: 'domain broken.test',
        symptom:
          'MTA node mta-1 sends to broken.test with its last good DNS answer since 2026-06-01T11:00:00.000Z: MX lookup for broken.test failed: ESERVFAIL',
        cause: expect.stringContaining('until 2026-06-02T11:00:00.000Z, then its messages are deferred'),
        fix: expect.stringContaining('dig MX broken.test @10.0.0.53'),
      }),
    ]);
  });

  it('keeps one small domain with broken DNS, or a small dead MX, at info (every list has some)', () => {
    const small = delivery({
      replies: [
        group({
          domain: 'tiny.test',
          mxHost: null,
          enhanced: '4.4.3',
          sample: 'MX lookup for tiny.test failed: ESERVFAIL',
          count: 20,
        }),
        group({
          domain: 'down.test',
          mxHost: 'mx.down.test',
          status: 'failed',
          sample: 'connect ECONNREFUSED 10.0.0.1:25',
          count: 20,
        }),
      ],
    });
    expect(dnsCheck.run(snapshot({ deliveries: [small] }), now, settings).map((f) => f.severity)).toEqual(['info']);
    expect(unreachableCheck.run(snapshot({ deliveries: [small] }), now, settings).map((f) => f.severity)).toEqual([
      'info',
    ]);
  });

  it('suspects the resolver when several domains fail at once', () => {
    const replies = ['a.test', 'b.test', 'c.test'].map((domain) =>
      group({ domain, mxHost: null, enhanced: '4.4.3', sample: `MX lookup for ${domain} failed: ETIMEOUT` }),
    );
    const findings = dnsCheck.run(snapshot({ deliveries: [delivery({ replies })] }), now, settings);
    expect(findings.map((f) => f.severity)).toEqual(['critical', 'critical', 'critical']);
    expect(findings[0]!.cause).toContain('the system resolver');
  });
});

describe('references', () => {
  const configuration = {
    affinities: [{ name: 'bulk', addresses: [{ address: '127.0.0.1', heloName: 'a', publicId: 1, weight: 1 }] }],
    localAddresses: ['127.0.0.1', '::1'],
    resolverServers: [],
    midPeers: ['exec-1'],
  };
  it('reports an affinity, a source address and a peer that the configuration does not define', () => {
    const shot = snapshot({
      deliveries: [
        delivery({ id: 1, affinity: 'promo' }),
        delivery({ id: 2, affinity: 'bulk' }),
        delivery({ id: 3, executionPeer: 'exec-9' }),
      ],
      configuration: {
        ...configuration,
        affinities: [
          ...configuration.affinities,
          { name: 'bulk2', addresses: [{ address: '198.51.100.7', heloName: 'b', publicId: 2, weight: 1 }] },
        ],
      },
    });
    const findings = referencesCheck.run(
      { ...shot, deliveries: [...shot.deliveries, delivery({ id: 4, affinity: 'bulk2' })] },
      now,
      settings,
    );
    expect(findings.map((f) => [f.subject, f.severity])).toEqual([
      ['delivery 1', 'critical'],
      ['delivery 3', 'critical'],
      ['delivery 4', 'critical'],
    ]);
    expect(findings[0]!.symptom).toContain('"promo"');
    expect(findings[0]!.fix).toContain('shaping.affinities');
    expect(findings[1]!.fix).toContain('midsourcing.peers');
    expect(findings[2]!.evidence.missingAddresses).toEqual(['198.51.100.7']);
  });

  it('says nothing for the default affinity without affinities, and when the doctor runs elsewhere', () => {
    expect(referencesCheck.run(snapshot({ deliveries: [delivery({ affinity: 'default' })] }), now, settings)).toEqual(
      [],
    );
    const elsewhere = snapshot({
      deliveries: [delivery({ affinity: 'bulk' })],
      configuration: { ...configuration, localAddresses: ['10.9.9.9'] },
    });
    expect(referencesCheck.run(elsewhere, now, settings)).toEqual([]);
  });
});

describe('content', () => {
  it('measures the HTML: bytes, tracked links, images', () => {
    expect(measureContent('<p><a href="https://a.test/1">1</a><img src="x.png"><imgx><IMG/></p>', 'hi')).toEqual({
      htmlBytes: 68,
      textBytes: 2,
      links: 1,
      images: 2,
    });
  });

  it('flags heavy content and too-large replies', () => {
    const heavy = delivery({ content: { htmlBytes: 300_000, textBytes: 0, links: 120, images: 60 } });
    const [finding] = contentCheck.run(snapshot({ deliveries: [heavy] }), now, settings);
    expect(finding).toMatchObject({ severity: 'warning', evidence: { htmlBytes: 300_000, links: 120, images: 60 } });
    expect(finding!.symptom).toContain('293 KB');
    const refused = delivery({
      replies: [group({ code: 552, enhanced: '5.3.4', sample: 'Message size exceeds fixed limit', status: 'failed' })],
    });
    expect(contentCheck.run(snapshot({ deliveries: [refused] }), now, settings)[0]).toMatchObject({
      severity: 'critical',
      impact: 50,
    });
    expect(contentCheck.run(snapshot({ deliveries: [delivery()] }), now, settings)).toEqual([]);
  });

  it('names the field behind links recipient data made into something not sent as a link', () => {
    const warned = delivery({
      state: 'prepared',
      preparationWarnings: [
        {
          code: 'LINK_REFUSED',
          link: 1,
          urlTemplate: '{{ website }}',
          variables: ['website'],
          recipients: 12,
          example: { recipient: 'ann@a.test', value: 'javascript:alert(1)', reason: 'scheme javascript:' },
          message: 'link 1 …',
        },
      ],
    });
    const [finding] = contentCheck.run(snapshot({ deliveries: [warned] }), now, settings);
    expect(finding).toMatchObject({ severity: 'warning', subject: 'delivery 7', impact: 12 });
    expect(finding!.symptom).toBe(
      '12 recipient(s) get link 1 ({{ website }}) without its href: not clickable, not tracked',
    );
    expect(finding!.cause).toContain('website');
    expect(finding!.cause).toContain('ann@a.test: "javascript:alert(1)"');
  });
});

describe('preparation', () => {
  it('names the template, field and recipient that broke personalization', () => {
    const error = 'html template, recipient ann@example.test: undefined variable: first_name, line:1, col:4';
    expect(parsePreparationError(error)).toEqual({
      template: 'html',
      recipient: 'ann@example.test',
      field: 'first_name',
    });
    const [finding] = preparationCheck.run(
      snapshot({ deliveries: [delivery({ state: 'preparation_failed', scope: 'recent', lastError: error })] }),
      now,
      settings,
    );
    expect(finding).toMatchObject({
      severity: 'critical',
      evidence: { field: 'first_name', recipient: 'ann@example.test' },
    });
    expect(finding!.symptom).toContain('field "first_name"');
    expect(finding!.fix).toContain('herald delivery prepare 7');
  });

  it('says the target is empty', () => {
    const [finding] = preparationCheck.run(
      snapshot({
        deliveries: [delivery({ state: 'preparation_failed', lastError: 'delivery 7: its list has no recipients' })],
      }),
      now,
      settings,
    );
    expect(finding!.symptom).toContain('target is empty');
  });
});

describe('target', () => {
  it('reports the shares of quarantined/denylisted and duplicates, and an all-excluded target', () => {
    const findings = targetCheck.run(
      snapshot({
        deliveries: [
          delivery({
            id: 1,
            target: { count: 1000, excluded: 260, exclusions: { quarantined: 150, denylisted: 30, duplicate: 80 } },
          }),
          delivery({ id: 2, state: 'prepared', target: { count: 40, excluded: 40, exclusions: { quarantined: 40 } } }),
          delivery({ id: 3, target: { count: 1000, excluded: 10, exclusions: { duplicate: 10 } } }),
        ],
      }),
      now,
      settings,
    );
    expect(findings.map((f) => [f.subject, f.severity, f.impact])).toEqual([
      ['delivery 1', 'warning', 180],
      ['delivery 1', 'warning', 80],
      ['delivery 2', 'critical', 40],
    ]);
    expect(findings[0]!.evidence.share).toBe(0.18);
  });
});

describe('list-health', () => {
  it('compares complaints to 0.1 % and 0.3 %, and flags an unsubscribe spike', () => {
    const findings = listHealthCheck.run(
      snapshot({
        deliveries: [
          delivery({
            id: 1,
            counts: { ...delivery().counts, sent: 10_000 },
            feedback: { complaints: 45, unsubscribes: 12 },
          }),
          delivery({
            id: 2,
            counts: { ...delivery().counts, sent: 10_000 },
            feedback: { complaints: 15, unsubscribes: 300 },
          }),
          delivery({
            id: 3,
            scope: 'recent',
            state: 'finished',
            counts: { ...delivery().counts, sent: 10_000 },
            feedback: { complaints: 5, unsubscribes: 10 },
          }),
        ],
      }),
      now,
      settings,
    );
    expect(findings.map((f) => [f.subject, f.severity, f.symptom.split(' ')[1]])).toEqual([
      ['delivery 1', 'critical', 'spam'],
      ['delivery 2', 'warning', 'spam'],
      ['delivery 2', 'critical', 'unsubscribes'],
    ]);
    expect(findings[0]!.evidence).toMatchObject({ rate: 0.0045, criticalRatio: 0.003 });
    expect(findings[2]!.evidence.baselineRate).toBe(0.0011);
  });
});

describe('workflows paused for days', () => {
  const paused = (pausedAt: number): WorkflowFacts => ({
    name: 'cleanup',
    schedule: '0 3 * * *',
    periodMs: day,
    enabled: true,
    pausedAt,
    registeredAt: now - 30 * day,
    lastSuccessAt: now - 10 * day,
    lastFinished: null,
    running: null,
    lease: null,
  });
  it('warns after a day, critical past workflows.pausedTooLongDays, silent for a short pause', () => {
    expect(workflowsCheck.run(snapshot({ workflows: [paused(now - 2 * hour)] }), now, settings)).toEqual([]);
    const [warning] = workflowsCheck.run(snapshot({ workflows: [paused(now - 3 * day)] }), now, settings);
    expect(warning).toMatchObject({ severity: 'warning', subject: 'workflow cleanup' });
    expect(warning!.fix).toContain('herald workflows resume cleanup');
    expect(warning!.cause).toContain('not purged');
    const [critical] = workflowsCheck.run(snapshot({ workflows: [paused(now - 8 * day)] }), now, settings);
    expect(critical!.severity).toBe('critical');
  });
});

describe('midsourcing: which side is slow', () => {
  const status = (buildAvg: number, appendAvg: number): OutboundStatus => ({
    deliveryId: 3,
    peer: 'exec',
    remoteId: 1,
    state: 'pushing',
    remoteState: null,
    parts: { total: 10, pending: 6, acked: 4 },
    recipients: 10_000,
    attempts: 4,
    retries: 0,
    timeouts: 0,
    buildMs: { avg: buildAvg, p95: buildAvg, max: buildAvg },
    appendMs: { avg: appendAvg, p95: appendAvg, max: appendAvg },
    bottleneck: buildAvg > appendAvg ? 'building' : 'appending',
    diagnosis: '',
    lastError: null,
    lastErrorAt: null,
    logs: { cursor: 0, applied: 0, complete: false, syncedAt: null },
    counters: null,
    countersAt: null,
    stateChange: null,
  });
  const run = (s: OutboundStatus) =>
    midsourcingCheck.run(
      snapshot({
        midsourcing: [
          { status: s, pushStartedAt: now - hour, updatedAt: now - minute, lastAckAt: now - minute, finalizedAt: null },
        ],
      }),
      now,
      settings,
    );
  it('names the marketing side when building parts is slow, the execution side when appending is', () => {
    const [marketing] = run(status(12_000, 300));
    expect(marketing).toMatchObject({ severity: 'warning', evidence: { side: 'marketing' } });
    expect(marketing!.fix).toContain('herald db maintain');
    expect(marketing!.fix).toContain('midsourcing.partSize');
    const [execution] = run(status(200, 9_000));
    expect(execution).toMatchObject({ evidence: { side: 'execution' } });
    expect(execution!.fix).toContain('herald workflows restart');
    expect(run(status(200, 300))).toEqual([]);
  });
});

describe('messages (stuck-message watchdog)', () => {
  it('reports expired claims, claims held too long and overdue messages; not a fresh claim', () => {
    const findings = messagesCheck.run(
      snapshot({
        messages: {
          claims: [
            {
              node: 'dead',
              claimed: 40,
              expired: 40,
              oldestClaimedUntil: now - 20 * minute,
              oldestUpdatedAt: now - 30 * minute,
            },
            {
              node: 'wedged',
              claimed: 5,
              expired: 0,
              oldestClaimedUntil: now + 5 * minute,
              oldestUpdatedAt: now - 2 * hour,
            },
            {
              node: 'busy',
              claimed: 900,
              expired: 0,
              oldestClaimedUntil: now + 9 * minute,
              oldestUpdatedAt: now - minute,
            },
            {
              node: 'just-expired',
              claimed: 3,
              expired: 3,
              oldestClaimedUntil: now - minute,
              oldestUpdatedAt: now - 11 * minute,
            },
          ],
          overdue: [{ deliveryId: 7, count: 250, oldestDueAt: now - 8 * hour }],
        },
      }),
      now,
      settings,
    );
    expect(findings.map((f) => [f.subject, f.severity, f.impact])).toEqual([
      ['node dead', 'critical', 40],
      ['node wedged', 'warning', 5],
      ['delivery 7', 'warning', 250],
    ]);
    expect(findings[2]!.cause).toContain('no MTA is running');
  });
});

describe('diagnose --delivery', () => {
  it('orders the findings about one delivery by the messages they affect', () => {
    const shot = snapshot({
      deliveries: [
        delivery({
          replies: [
            group({
              domain: 'down.test',
              mxHost: 'mx.down.test',
              sample: 'connect ECONNREFUSED 1.2.3.4:25',
              count: 20,
            }),
            { ...spamhaus, count: 300 },
          ],
          content: { htmlBytes: 200_000, textBytes: 0, links: 3, images: 1 },
        }),
      ],
    });
    const { findings } = diagnose(shot, now, settings, { deliveryId: 7 });
    expect(findings.map((f) => [f.check, f.impact])).toEqual([
      ['content', 400],
      ['reputation', 300],
      ['unreachable', 20],
    ]);
  });

  it('gives nothing on a healthy snapshot, a finished delivery like the demo’s included', () => {
    // The demo's delivery: finished, ~5 % hard bounces, unreachable and NXDOMAIN domains, one unsubscribe.
    const demo = delivery({
      id: 1,
      state: 'finished',
      scope: 'recent',
      counts: { total: 600, sent: 529, failed: 71, ignored: 0, pending: 0, cancelled: 0 },
      failedByReason: { expired: 39, invalid_domain: 12, user_unknown: 20 },
      feedback: { complaints: 0, unsubscribes: 1 },
      target: {
        count: 600,
        excluded: 0,
        exclusions: { invalid_address: 0, duplicate: 0, quarantined: 0, denylisted: 0 },
      },
    });
    expect(diagnose(snapshot({ deliveries: [delivery(), demo] }), now, settings).findings).toEqual([]);
  });
});
