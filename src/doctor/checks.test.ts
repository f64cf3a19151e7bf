import { describe, expect, it } from 'vitest';
import { diagnose } from './checks.ts';
import { databaseCheck } from './check-database.ts';
import { deliveryBouncesCheck } from './check-delivery-bounces.ts';
import { deliveryShapingCheck } from './check-delivery-shaping.ts';
import { deliveryStuckCheck } from './check-delivery-stuck.ts';
import { importsCheck } from './check-imports.ts';
import { midsourcingCheck } from './check-midsourcing.ts';
import { trackingLagCheck } from './check-tracking-lag.ts';
import { webhooksCheck } from './check-webhooks.ts';
import { workflowsCheck } from './check-workflows.ts';
import { doctorSettings, type DoctorSettings } from './finding.ts';
import type { DeliveryFacts, DoctorSnapshot, MidOutboundFacts, WorkflowFacts } from './snapshot.ts';
import { parseConfig } from '../config/load.ts';
import type { OutboundStatus } from '../midsourcing/status.ts';
import type { MxStatsView } from '../shaping/stats-view.ts';

// Every check on small hand-built snapshots: pure, no database, time passed in.

const now = Date.UTC(2026, 5, 1, 12);
const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
const settings: DoctorSettings = doctorSettings(parseConfig({}, 'test'));

function emptySnapshot(): DoctorSnapshot {
  return {
    takenAt: now,
    deliveries: [],
    shaping: { takenAt: now, nodes: [], rules: [], paths: [], backoffs: [], suspensions: [] },
    workflows: [],
    tracking: { watermark: 0, lastEventId: 0, oldestPendingAt: null },
    webhooks: [],
    imports: [],
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
    configuration: { affinities: [], localAddresses: null, resolverServers: [], midPeers: [] },
    messages: { claims: [], overdue: [] },
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
    content: { htmlBytes: 2000, textBytes: 0, links: 3, images: 1 },
    replies: [],
    feedback: { complaints: 0, unsubscribes: 0 },
    executionPeer: null,
    receivedFrom: null,
    updatedAt: now - hour,
    scheduledAt: null,
    startedAt: now - hour,
    validUntil: now + 5 * day,
    counts: { total: 1000, sent: 900, failed: 0, ignored: 0, pending: 100, cancelled: 0 },
    failedByReason: {},
    duePending: 0,
    lastLogUpdateAt: now - minute,
    pendingByDomain: [],
    ...overrides,
  };
}

function workflow(overrides: Partial<WorkflowFacts> = {}): WorkflowFacts {
  return {
    name: 'tracking',
    schedule: '10 * * * *',
    periodMs: hour,
    enabled: true,
    pausedAt: null,
    registeredAt: now - 30 * day,
    lastSuccessAt: now - 30 * minute,
    lastFinished: {
      id: 3,
      status: 'succeeded',
      startedAt: now - 31 * minute,
      finishedAt: now - 30 * minute,
      failedStep: null,
      error: null,
    },
    running: null,
    lease: null,
    ...overrides,
  };
}

const limits = {
  maxConnections: 5,
  maxMessagesPerHour: 3600,
  maxMessagesPerConnection: 100,
  configuredMaxConnections: 5,
  configuredMaxMessagesPerHour: 3600,
};

function shapingWith(
  binding: MxStatsView['rules'][number]['binding'],
  overrides: Partial<MxStatsView> = {},
  ruleLimits = limits,
): MxStatsView {
  return {
    takenAt: now,
    nodes: [{ nodeId: 'mta-1', takenAt: now - 5_000, rulesVersion: 'v1', backend: 'memory' }],
    rules: [
      {
        rateKey: 'gmail|shared',
        rule: 'gmail',
        masks: ['*.google.com'],
        shared: true,
        publicId: null,
        limits: ruleLimits,
        openConnections: 5,
        messages: 3500,
        load: { messagesPerHour: 0.97 },
        waiting: 40,
        binding,
        bindingReason: `${binding} reason`,
        backoffs: [],
        nodes: ['mta-1'],
      },
    ],
    paths: [
      {
        pathId: 'gmail|0|10.0.0.1',
        rule: 'gmail',
        mxHost: 'gmail-smtp-in.l.google.com',
        mxIp: '10.0.0.1',
        publicId: 0,
        openConnections: 5,
        messages: 3500,
        connectionsAccepted: 10,
        connectionsRefused: 0,
        unreachable: 0,
        deferrals: { '4xx': 0, '5xx': 0, local: 0 },
        lastActivityAt: now,
        nodeId: 'mta-1',
        rateKey: 'gmail|shared',
        limits: ruleLimits,
        load: { connections: 1, messagesPerHour: 0.97 },
        waiting: 40,
        binding,
        bindingReason: `${binding} reason`,
      },
    ],
    backoffs: [],
    suspensions: [],
    ...overrides,
  };
}

const gmailPending = [{ domain: 'gmail.com', pending: 7200, mxHosts: ['gmail-smtp-in.l.google.com'] }];

describe('delivery-shaping', () => {
  it('says which MTA node cannot reach its shared throttle, and that it is sending nothing', () => {
    const snapshot: DoctorSnapshot = {
      ...emptySnapshot(),
      shaping: {
        ...emptySnapshot().shaping,
        nodes: [
          { nodeId: 'mta-a', takenAt: now - minute, rulesVersion: 'r1', backend: 'redis' },
          {
            nodeId: 'mta-b',
            takenAt: now - minute,
            rulesVersion: 'r1',
            backend: 'redis',
            throttleError: 'redis throttle unreachable: Command timed out',
          },
        ],
      },
    };
    expect(deliveryShapingCheck.run(snapshot, now, settings)).toEqual([
      expect.objectContaining({
        severity: 'critical',
        subject: 'mta node mta-b',
        cause: 'redis throttle unreachable: Command timed out',
        evidence: expect.objectContaining({ node: 'mta-b' }),
      }),
    ]);
  });
  it('names the MX rule whose hourly rate holds a delivery back, with the time to drain', () => {
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [delivery({ counts: { ...delivery().counts, pending: 7200 }, pendingByDomain: gmailPending })],
      shaping: shapingWith('maxMessagesPerHour'),
    };
    const [finding, ...rest] = deliveryShapingCheck.run(snapshot, now, settings);
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ check: 'delivery-shaping', severity: 'warning', subject: 'delivery 7' });
    expect(finding!.cause).toContain('MX rule "gmail" caps the rate at 3600 messages per hour');
    expect(finding!.fix).toContain('maxMessagesPerHour of MX rule "gmail"');
    expect(finding!.evidence).toMatchObject({
      rule: 'gmail',
      pendingBehindRule: 7200,
      hoursToDrain: 2,
      binding: 'maxMessagesPerHour',
    });
    // No node sending (Redis unreachable): the rule's pace is no estimate; the node's finding says why.
    const shaping = shapingWith('maxMessagesPerHour');
    const silent = { ...snapshot, shaping: { ...shaping, nodes: [{ ...shaping.nodes[0]!, throttleError: 'x' }] } };
    expect(deliveryShapingCheck.run(silent, now, settings).map((f) => f.subject)).toEqual(['mta node mta-1']);
  });

  // A rule not shared has one rate key per public id: a domain sent from two ids drains through
  // both at once. Each key was charged every pending message: twice the time, and "will expire".
  it('splits a domain sent from several public ids between their rate keys', () => {
    const base = shapingWith('maxMessagesPerHour');
    const perId = (id: number) => ({
      rule: { ...base.rules[0]!, rateKey: `gmail|id${id}`, shared: false, publicId: id },
      path: { ...base.paths[0]!, pathId: `gmail|${id}|10.0.0.1`, publicId: id, rateKey: `gmail|id${id}` },
    });
    const shaping = {
      ...base,
      rules: [perId(1).rule, perId(2).rule],
      paths: [perId(1).path, perId(2).path],
    };
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [delivery({ validUntil: now + 1.5 * hour, pendingByDomain: gmailPending })],
      shaping,
    };
    const findings = deliveryShapingCheck.run(snapshot, now, settings);
    expect(findings.map((f) => [f.severity, f.evidence])).toEqual([
      ['info', expect.objectContaining({ rateKey: 'gmail|id1', pendingBehindRule: 3600, hoursToDrain: 1 })],
      ['info', expect.objectContaining({ rateKey: 'gmail|id2', pendingBehindRule: 3600, hoursToDrain: 1 })],
    ]);
  });

  it('is critical when the messages cannot drain before the validity ends', () => {
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [delivery({ validUntil: now + hour, pendingByDomain: gmailPending })],
      shaping: shapingWith('maxConnections'),
    };
    const [finding] = deliveryShapingCheck.run(snapshot, now, settings);
    expect(finding).toMatchObject({ severity: 'critical' });
    expect(finding!.symptom).toContain('will expire');
    expect(finding!.fix).toContain('maxConnections of MX rule "gmail"');
  });

  it('explains a provider backoff with its replies, and reports it once', () => {
    const backoff = {
      key: 'gmail|shared',
      rule: 'gmail-421',
      factor: 0.5,
      limits: ['rate' as const],
      since: now - 10 * minute,
      triggeredAt: now - 10 * minute,
      until: now + 50 * minute,
      evidence: {
        matches: 12,
        firstAt: now - 12 * minute,
        lastAt: now - 10 * minute,
        replies: ['421 4.7.0 Try again later'],
      },
      nodeId: 'mta-1',
    };
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [delivery({ pendingByDomain: gmailPending })],
      shaping: shapingWith('backoff', { backoffs: [backoff] }, { ...limits, maxMessagesPerHour: 1800 }),
    };
    const findings = deliveryShapingCheck.run(snapshot, now, settings);
    expect(findings).toHaveLength(1);
    expect(findings[0]!.cause).toContain('421 4.7.0 Try again later');
    expect(findings[0]!.cause).toContain('backoff rule "gmail-421"');
    expect(findings[0]!.evidence).toMatchObject({
      hoursToDrain: 4,
      maxMessagesPerHour: 1800,
      configuredMaxMessagesPerHour: 3600,
    });
  });

  it('reports a suspended domain a delivery waits for', () => {
    const suspension = {
      domain: 'gmail.com',
      since: now - hour,
      until: now + 2 * hour,
      evidence: {
        messages: 400,
        errors: 390,
        errorRatio: 0.975,
        sampleReplies: ['421 4.7.0 [TSS04] Messages temporarily deferred'],
      },
      nodeId: 'mta-1',
    };
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [delivery({ pendingByDomain: gmailPending })],
      shaping: { ...shapingWith('none'), suspensions: [suspension] },
    };
    const findings = deliveryShapingCheck.run(snapshot, now, settings);
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ severity: 'warning', subject: 'delivery 7' });
    expect(findings[0]!.cause).toContain('390 errors in 400 messages');
  });

  it('says nothing when no limit binds, and reports unattached backoffs as info', () => {
    expect(
      deliveryShapingCheck.run(
        { ...emptySnapshot(), deliveries: [delivery({ pendingByDomain: gmailPending })], shaping: shapingWith('none') },
        now,
        settings,
      ),
    ).toEqual([]);
    const backoff = {
      key: 'yahoo|shared',
      rule: 'yahoo-ts',
      factor: 0.25,
      limits: ['rate' as const],
      since: now,
      triggeredAt: now,
      until: now + hour,
      evidence: { matches: 3, firstAt: now, lastAt: now, replies: ['421 4.7.0 [TS01]'] },
      nodeId: 'mta-1',
    };
    const [finding] = deliveryShapingCheck.run(
      { ...emptySnapshot(), shaping: { ...shapingWith('none'), backoffs: [backoff] } },
      now,
      settings,
    );
    expect(finding).toMatchObject({ severity: 'info', subject: 'mx rule yahoo' });
  });
});

describe('delivery-bounces', () => {
  it('flags a high user_unknown + invalid_domain rate as a list-quality problem', () => {
    const d = delivery({
      counts: { total: 1000, sent: 850, failed: 150, ignored: 0, pending: 0, cancelled: 0 },
      failedByReason: { user_unknown: 120, invalid_domain: 10, mailbox_full: 20 },
    });
    const [finding] = deliveryBouncesCheck.run({ ...emptySnapshot(), deliveries: [d] }, now, settings);
    expect(finding).toMatchObject({
      severity: 'critical',
      subject: 'delivery 7',
      evidence: { hard: 130, attempted: 1000, user_unknown: 120, invalid_domain: 10, ratio: 0.13 },
    });
    expect(finding!.fix).toContain('herald delivery pause 7');
  });

  it('warns between the thresholds, ignores small deliveries and soft failures', () => {
    const warn = delivery({
      counts: { total: 1000, sent: 940, failed: 60, ignored: 0, pending: 0, cancelled: 0 },
      failedByReason: { user_unknown: 60 },
    });
    expect(deliveryBouncesCheck.run({ ...emptySnapshot(), deliveries: [warn] }, now, settings)[0]).toMatchObject({
      severity: 'warning',
    });
    const small = delivery({
      counts: { total: 50, sent: 10, failed: 40, ignored: 0, pending: 0, cancelled: 0 },
      failedByReason: { user_unknown: 40 },
    });
    const soft = delivery({
      counts: { total: 1000, sent: 700, failed: 300, ignored: 0, pending: 0, cancelled: 0 },
      failedByReason: { mailbox_full: 300 },
    });
    expect(deliveryBouncesCheck.run({ ...emptySnapshot(), deliveries: [small, soft] }, now, settings)).toEqual([]);
  });
});

describe('imports', () => {
  it('flags a running import whose lease ran out (its process was killed), not a live one', () => {
    const entry = {
      id: 4,
      fileName: 'customers.csv',
      list: 'newsletter',
      readCount: 135_000,
      startedAt: now - 5 * minute,
    };
    const at = (silentMs: number) =>
      importsCheck.run({ ...emptySnapshot(), imports: [{ ...entry, updatedAt: now - silentMs }] }, now, settings);
    // import.leaseSeconds is 60: a live import renews every 20 s.
    expect(at(10_000)).toEqual([]);
    const [finding] = at(3 * minute);
    expect(finding).toMatchObject({ check: 'imports', severity: 'warning', subject: 'import 4' });
    expect(finding!.symptom).toContain('import 4 of customers.csv into list "newsletter" is marked running');
    expect(finding!.fix).toContain('herald import recipients customers.csv --list newsletter');
  });
});

describe('delivery-stuck', () => {
  it('flags a delivery preparing for hours', () => {
    const [finding] = deliveryStuckCheck.run(
      { ...emptySnapshot(), deliveries: [delivery({ state: 'preparing', updatedAt: now - 3 * hour })] },
      now,
      settings,
    );
    expect(finding).toMatchObject({ severity: 'critical', evidence: { minutes: 180 } });
    expect(finding!.fix).toContain('herald delivery prepare 7');
  });

  it('flags a preparing delivery as soon as its preparation lease ran out, not an hour later', () => {
    const at = (ms: number) =>
      deliveryStuckCheck.run(
        { ...emptySnapshot(), deliveries: [delivery({ state: 'preparing', updatedAt: now - ms })] },
        now,
        settings,
      );
    // delivery.preparationLeaseSeconds is 30: a live preparation renews every 10 s.
    expect(at(5_000)).toEqual([]);
    const [finding] = at(45_000);
    expect(finding).toMatchObject({ severity: 'critical', evidence: { thresholdMinutes: 0.5 } });
    expect(finding!.symptom).toContain('has been preparing for 45 s');
    expect(finding!.fix).toContain('herald delivery prepare 7');
  });

  it('a delivery received from a mid-sourcing peer waits for its parts: the fix is on the peer, never `delivery prepare`', () => {
    const at = (ms: number) =>
      deliveryStuckCheck.run(
        {
          ...emptySnapshot(),
          deliveries: [
            delivery({
              state: 'preparing',
              updatedAt: now - ms,
              receivedFrom: { peer: 'marketing-1', sourceDeliveryId: 41 },
            }),
          ],
        },
        now,
        settings,
      );
    // A push's parts come seconds apart, a retrying one minutes apart: not a dead preparation at 45 s.
    expect(at(45_000)).toEqual([]);
    const [finding] = at(3 * hour);
    expect(finding).toMatchObject({
      severity: 'warning',
      evidence: { peer: 'marketing-1', sourceDeliveryId: 41, thresholdMinutes: 10 },
    });
    expect(finding!.symptom).toContain('received from the mid-sourcing peer "marketing-1" (its delivery 41)');
    expect(finding!.fix).toContain('`herald mid push 41`');
    expect(finding!.fix).not.toContain('herald delivery prepare');
  });

  it('flags a start_pending delivery past its time, naming delivery-manager', () => {
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [delivery({ state: 'start_pending', scheduledAt: now - hour })],
      workflows: [workflow({ name: 'delivery-manager', pausedAt: now - 2 * hour })],
    };
    const [finding] = deliveryStuckCheck.run(snapshot, now, settings);
    expect(finding!.cause).toContain('paused since');
    expect(finding!.fix).toContain('herald workflows run delivery-manager');
    expect(
      deliveryStuckCheck.run(
        { ...emptySnapshot(), deliveries: [delivery({ state: 'start_pending', scheduledAt: now - 5 * minute })] },
        now,
        settings,
      ),
    ).toEqual([]);
  });

  it('flags due messages with no progress and no MTA running', () => {
    const stalled = delivery({ duePending: 500, lastLogUpdateAt: now - 2 * hour });
    const [finding] = deliveryStuckCheck.run({ ...emptySnapshot(), deliveries: [stalled] }, now, settings);
    expect(finding).toMatchObject({ severity: 'critical', evidence: { duePending: 500, mtaNodes: [] } });
    expect(finding!.fix).toContain('herald start --roles mta');
    const [withMta] = deliveryStuckCheck.run(
      { ...emptySnapshot(), deliveries: [stalled], shaping: shapingWith('none') },
      now,
      settings,
    );
    expect(withMta!.cause).toContain('mta-1');
    expect(
      deliveryStuckCheck.run(
        {
          ...emptySnapshot(),
          deliveries: [
            delivery({ duePending: 500 }),
            delivery({ executionPeer: 'exec', duePending: 5, lastLogUpdateAt: now - day }),
          ],
        },
        now,
        settings,
      ),
    ).toEqual([]);
  });
});

describe('workflows', () => {
  it('reports a failed last run with its error', () => {
    const failed = workflow({
      lastFinished: {
        id: 9,
        status: 'failed',
        startedAt: now - hour,
        finishedAt: now - hour,
        failedStep: 1,
        error: 'disk full',
      },
    });
    const [finding] = workflowsCheck.run({ ...emptySnapshot(), workflows: [failed] }, now, settings);
    expect(finding).toMatchObject({
      severity: 'critical',
      subject: 'workflow tracking',
      cause: 'disk full',
      evidence: { runId: 9, failedStep: 1 },
    });
    expect(finding!.fix).toContain('herald workflows restart tracking');
  });

  it('reports an overdue workflow (no success for twice its interval)', () => {
    const [finding] = workflowsCheck.run(
      { ...emptySnapshot(), workflows: [workflow({ lastSuccessAt: now - 3 * hour })] },
      now,
      settings,
    );
    expect(finding).toMatchObject({ severity: 'warning', evidence: { periodMinutes: 60, overdueMinutes: 60 } });
    expect(
      workflowsCheck.run(
        {
          ...emptySnapshot(),
          workflows: [
            workflow({ lastSuccessAt: now - 90 * minute }),
            workflow({ lastSuccessAt: now - 9 * hour, pausedAt: now - day }),
          ],
        },
        now,
        settings,
      ),
    ).toEqual([]);
  });

  it('reports a run held by a dead node', () => {
    const dead = workflow({
      running: { id: 11, holder: 'node-a/xyz', startedAt: now - 2 * hour },
      lease: { holder: 'node-a/xyz', expiresAt: now - 90 * minute },
    });
    const [finding] = workflowsCheck.run({ ...emptySnapshot(), workflows: [dead] }, now, settings);
    expect(finding).toMatchObject({ severity: 'critical', evidence: { runId: 11, holder: 'node-a/xyz' } });
    const alive = workflow({
      running: { id: 11, holder: 'node-a/xyz', startedAt: now - 2 * hour },
      lease: { holder: 'node-a/xyz', expiresAt: now + minute },
    });
    expect(workflowsCheck.run({ ...emptySnapshot(), workflows: [alive] }, now, settings)).toEqual([]);
  });
});

describe('tracking-lag', () => {
  it('reports raw events waiting for hours, with the tracking workflow state', () => {
    const snapshot = {
      ...emptySnapshot(),
      tracking: { watermark: 100, lastEventId: 350, oldestPendingAt: now - 5 * hour },
      workflows: [
        workflow({
          lastFinished: {
            id: 4,
            status: 'failed' as const,
            startedAt: now - hour,
            finishedAt: now - hour,
            failedStep: 0,
            error: 'boom',
          },
        }),
      ],
    };
    const [finding] = trackingLagCheck.run(snapshot, now, settings);
    expect(finding).toMatchObject({
      severity: 'warning',
      subject: 'workflow tracking',
      evidence: { waitingEvents: 250, lagMinutes: 300 },
    });
    expect(finding!.cause).toContain('boom');
    expect(
      trackingLagCheck.run(
        { ...snapshot, tracking: { ...snapshot.tracking, oldestPendingAt: now - 2 * day } },
        now,
        settings,
      )[0]!.severity,
    ).toBe('critical');
    expect(
      trackingLagCheck.run(
        { ...snapshot, tracking: { ...snapshot.tracking, oldestPendingAt: now - 30 * minute } },
        now,
        settings,
      ),
    ).toEqual([]);
  });
});

describe('database', () => {
  it('reports delivery logs and tracking events kept past retention', () => {
    const snapshot = {
      ...emptySnapshot(),
      retention: {
        deliveryLogs: { purgeable: 5000, capped: false, oldestAt: now - 200 * day },
        trackingEvents: { purgeable: 100, oldestAt: now - 400 * day },
      },
      workflows: [workflow({ name: 'cleanup', pausedAt: now - 30 * day })],
    };
    const findings = databaseCheck.run(snapshot, now, settings);
    expect(findings.map((f) => f.subject)).toEqual(['table delivery_logs', 'table tracking_events']);
    expect(findings[0]!.cause).toContain('paused');
    const inGrace = {
      ...snapshot,
      retention: {
        deliveryLogs: { purgeable: 5000, capped: false, oldestAt: now - 181 * day },
        trackingEvents: { purgeable: 0, oldestAt: now - 10 * day },
      },
    };
    expect(databaseCheck.run(inGrace, now, settings)).toEqual([]);
  });

  it('reports bloat, SQLite free space and failed maintenance', () => {
    const big = 64 * 1024 * 1024;
    const snapshot = emptySnapshot();
    snapshot.database = {
      ...snapshot.database,
      dialect: 'postgres',
      sizeBytes: 4 * big,
      freeBytes: null,
      freelistPages: null,
      tables: [
        {
          name: 'delivery_logs',
          rows: 1000,
          rowsEstimated: true,
          tableBytes: big,
          indexBytes: big,
          indexToTableRatio: 1,
          deadRows: 9000,
          bloatRatio: 0.9,
          lastVacuumAt: null,
          lastAnalyzeAt: null,
          indexes: [
            { name: 'delivery_logs_due', bytes: big, bloatRatio: 0.7 },
            { name: 'small', bytes: 1024, bloatRatio: 0.9 },
          ],
        },
      ],
      lastMaintenance: {
        source: 'workflow',
        state: 'failed',
        step: 'VACUUM (ANALYZE) delivery_logs',
        owner: 'node-1:4242',
        startedAt: '2026-05-31T04:00:00.000Z',
        finishedAt: '2026-05-31T04:01:00.000Z',
        durationMs: 60_000,
        error: 'lock timeout',
        summary: null,
      },
    };
    expect(databaseCheck.run(snapshot, now, settings).map((f) => f.subject)).toEqual([
      'table delivery_logs',
      'index delivery_logs_due',
      'database maintenance',
    ]);
    const sqlite = emptySnapshot();
    sqlite.database = { ...sqlite.database, sizeBytes: 4 * big, freeBytes: 2 * big, autoVacuum: 'none' };
    const [free] = databaseCheck.run(sqlite, now, settings);
    expect(free).toMatchObject({ severity: 'info', subject: 'database file' });
    expect(free!.fix).toContain('herald db maintain --convert');
  });

  it('reports a query waiting for a lock past 5 s with the session holding it', () => {
    const wait = {
      pid: 4100,
      waitingMs: 45_000,
      query: 'select "id" from "delivery_logs" where "status" = $1 for update skip locked',
      blockerPid: 3999,
      blockerState: 'idle in transaction',
      blockerQuery: 'lock table delivery_logs in access exclusive mode',
      blockerTransactionMs: 600_000,
    };
    const snapshot = emptySnapshot();
    snapshot.database = { ...snapshot.database, dialect: 'postgres', lockWaits: [wait, { ...wait, waitingMs: 1_000 }] };
    const [finding] = databaseCheck.run(snapshot, now, settings);
    expect(finding).toMatchObject({ severity: 'warning', subject: 'database locks' });
    expect(finding!.symptom).toMatch(/^1 query has been waiting for a lock for up to 45 s/);
    expect(finding!.cause).toContain('session 3999 (idle in transaction, transaction open for 10 min)');
    expect(finding!.fix).toContain('pg_terminate_backend(3999)');
    snapshot.database.lockWaits = [{ ...wait, waitingMs: 1_000 }];
    expect(databaseCheck.run(snapshot, now, settings)).toEqual([]);
  });
});

describe('midsourcing', () => {
  function outbound(overrides: Partial<OutboundStatus> = {}, facts: Partial<MidOutboundFacts> = {}): MidOutboundFacts {
    const status: OutboundStatus = {
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
      buildMs: { avg: 1, p95: 1, max: 1 },
      appendMs: { avg: 1, p95: 1, max: 1 },
      bottleneck: 'appending',
      diagnosis: 'fine',
      lastError: null,
      lastErrorAt: null,
      logs: { cursor: 0, applied: 0, complete: false, syncedAt: null },
      counters: null,
      countersAt: null,
      stateChange: null,
      ...overrides,
    };
    return {
      status,
      pushStartedAt: now - 2 * hour,
      updatedAt: now - 2 * hour,
      lastAckAt: now - 2 * hour,
      finalizedAt: null,
      ...facts,
    };
  }

  it('reports a stalled push, with its last error', () => {
    const [finding] = midsourcingCheck.run(
      { ...emptySnapshot(), midsourcing: [outbound({ lastError: 'ECONNREFUSED 10.0.0.9:8443' })] },
      now,
      settings,
    );
    expect(finding).toMatchObject({ severity: 'critical', subject: 'delivery 3', evidence: { parts: { pending: 6 } } });
    expect(finding!.cause).toContain('ECONNREFUSED');
    expect(finding!.fix).toContain('herald mid push 3 --peer exec');
    expect(
      midsourcingCheck.run(
        { ...emptySnapshot(), midsourcing: [outbound({}, { updatedAt: now - minute })] },
        now,
        settings,
      ),
    ).toEqual([]);
  });

  it('says an unsigned answer comes from something else than the peer, and what to check', () => {
    const lastError =
      'part 5 of delivery 3: ANSWER_NOT_SIGNED: the answer is not signed by midsourcing.peers exec: wrong url, a proxy answering, or a different secret (HTTP 200, no x-herald-answer-signature; nothing of it was used)';
    const [finding] = midsourcingCheck.run(
      { ...emptySnapshot(), midsourcing: [outbound({ lastError, lastErrorAt: now - hour })] },
      now,
      settings,
    );
    expect(finding).toMatchObject({ severity: 'critical', subject: 'delivery 3' });
    expect(finding!.cause).toContain('ANSWER_NOT_SIGNED');
    expect(finding!.cause).toContain("what answers at exec's url is not exec");
    expect(finding!.fix).toContain('check the url of "exec" in midsourcing.peers');
    expect(finding!.fix).toContain('herald mid push 3 --peer exec');
  });

  it('reports a push failing requests, and an unacknowledged state change', () => {
    const failing = outbound(
      { bottleneck: 'network', retries: 9, timeouts: 4, diagnosis: '9 retries for 4 parts' },
      { updatedAt: now - minute },
    );
    expect(midsourcingCheck.run({ ...emptySnapshot(), midsourcing: [failing] }, now, settings)[0]).toMatchObject({
      severity: 'warning',
    });
    const change = {
      localState: 'paused',
      target: 'paused',
      version: 2,
      ackedVersion: 1,
      reached: false,
      outcome: null,
      remoteState: 'in_progress',
      attempts: 5,
      lastError: 'HTTP 503',
      changedAt: now - hour,
      ackedAt: null,
    };
    const unacked = outbound(
      { state: 'finalized', parts: { total: 10, pending: 0, acked: 10 }, stateChange: change },
      { updatedAt: now - minute },
    );
    const [finding] = midsourcingCheck.run({ ...emptySnapshot(), midsourcing: [unacked] }, now, settings);
    expect(finding).toMatchObject({
      severity: 'warning',
      evidence: { version: 2, ackedVersion: 1, stateError: 'HTTP 503' },
    });
    expect(finding!.fix).toContain('herald mid sync');
  });
});

describe('webhooks', () => {
  const subscription = {
    id: 4,
    url: 'http://127.0.0.1:8080/hook',
    state: 'paused' as const,
    consecutiveFailures: 20,
    lastError:
      'destination refused: 127.0.0.1 is in webhooks.deniedNetworks (127.0.0.0/8); add it to webhooks.allowedNetworks to allow it',
    lastSuccessAt: null,
    pausedAt: now - hour,
    backlog: 12,
  };

  it('tells to change the URL or webhooks.allowedNetworks, not to fix the receiver, when its address is denied', () => {
    const [finding] = webhooksCheck.run({ ...emptySnapshot(), webhooks: [subscription] }, now, settings);
    expect(finding!.fix).toContain('herald webhooks delete 4');
    expect(finding!.fix).toContain('webhooks.allowedNetworks');
    expect(finding!.fix).not.toContain('fix the receiver');
    const [failing] = webhooksCheck.run(
      { ...emptySnapshot(), webhooks: [{ ...subscription, state: 'active', consecutiveFailures: 2 }] },
      now,
      settings,
    );
    expect(failing!.fix).toContain('webhooks.allowedNetworks');
  });

  it('tells to fix the receiver when it answered with an error', () => {
    const [finding] = webhooksCheck.run(
      { ...emptySnapshot(), webhooks: [{ ...subscription, lastError: 'HTTP 503' }] },
      now,
      settings,
    );
    expect(finding!.fix).toMatch(/^fix the receiver, then `herald webhooks resume 4`/);
  });
});

describe('diagnose', () => {
  it('passes a healthy snapshot and sorts findings by severity', () => {
    expect(diagnose(emptySnapshot(), now, settings).findings).toEqual([]);
    const snapshot = {
      ...emptySnapshot(),
      deliveries: [
        delivery({ id: 1, state: 'preparing', updatedAt: now - day }),
        delivery({
          id: 2,
          counts: { total: 1000, sent: 940, failed: 60, ignored: 0, pending: 0, cancelled: 0 },
          failedByReason: { user_unknown: 60 },
        }),
      ],
      workflows: [workflow({ lastSuccessAt: now - 5 * hour })],
    };
    const result = diagnose(snapshot, now, settings);
    expect(result.findings.map((f) => [f.severity, f.subject])).toEqual([
      ['critical', 'delivery 1'],
      ['warning', 'delivery 2'],
      ['warning', 'workflow tracking'],
    ]);
    expect(diagnose(snapshot, now, settings, { deliveryId: 2 }).findings.map((f) => f.subject)).toEqual(['delivery 2']);
  });
});
