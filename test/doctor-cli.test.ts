import { expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Finding } from '../src/doctor/finding.ts';
import { openHerald } from '../src/main.ts';
import type { ShapingSnapshot } from '../src/shaping/snapshot.ts';
import { writeShapingSnapshot } from '../src/shaping/stats-store.ts';
import type { Store } from '../src/store/database.ts';
import type { DeliveryState, NewDeliveryLog } from '../src/store/tables.ts';
import { insertSubscription } from '../src/webhooks/webhook-store.ts';
import { ensureWorkflowRows, finishRun, insertRun } from '../src/workflows/workflow-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { insertList } from './support/fixtures.ts';

// `herald doctor --json` on real situations built in a real database, per dialect; the clock is
// injected so "hours ago" needs no sleeping.

const now = Date.UTC(2026, 5, 1, 12);
const minute = 60_000;
const hour = 60 * minute;

// Settings safe for real mail, so the configuration check finds nothing (test/config-safety-cli.test.ts
// covers the unsafe defaults); the refusing resolver keeps the bounce-domain lookup off the network.
// Connection caps small enough for any machine's open-file limit (the open-files check reads this
// process's own): the defaults add up to ~9,700 descriptors, over a hard limit of 4,096.
const safeSettings = {
  tracking: { baseUrl: 'https://t.news.example.net', maxConnections: 200 },
  api: { maxConnections: 100 },
  mta: {
    maxQueued: 500,
    heloName: 'mta1.news.example.net',
    bounceDomain: 'bounces.news.example.net',
    resolverServers: ['127.0.0.1:1'],
    dkim: [
      { domain: 'example.com', selector: 's1', privateKeyFile: '/keys/s1.pem' },
      { domain: 'news.example.net', selector: 's1', privateKeyFile: '/keys/s1.pem' },
    ],
  },
};

async function doctor(
  url: string,
  args: string[] = [],
): Promise<{
  exitCode: number;
  out: { checkedAt: string; checks: string[]; findings: Finding[] };
  stdout: string[];
  stderr: string[];
}> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const context: CliContext = {
    output: { out: (line) => stdout.push(line), err: (line) => stderr.push(line) },
    open: () =>
      openHerald({
        config: parseConfig({ ...safeSettings, database: { url } }, 'test'),
        logger: silentLogger,
        clock: manualClock(now),
      }),
  };
  const exitCode = await runCli(['node', 'herald', 'doctor', ...args], context);
  const json = stdout.find((line) => line.startsWith('{'));
  return { exitCode, out: json ? JSON.parse(json) : { checkedAt: '', checks: [], findings: [] }, stdout, stderr };
}

async function insertDelivery(
  store: Store,
  name: string,
  state: DeliveryState,
  at: number,
  extra: { scheduled_at?: number; valid_until?: number } = {},
): Promise<number> {
  const listId = await insertList(store, `${name}-list`, []);
  const row = await store.db
    .insertInto('deliveries')
    .values({
      name,
      state,
      from_address: 'news@example.com',
      from_name: null,
      reply_to: null,
      subject_template: 'Hi',
      html_template: '<p>Hi</p>',
      text_template: null,
      list_id: listId,
      affinity: null,
      validity_seconds: 5 * 86_400,
      valid_until: extra.valid_until ?? null,
      scheduled_at: extra.scheduled_at ?? null,
      last_error: null,
      created_at: at,
      updated_at: at,
      prepared_at: null,
      started_at: state === 'in_progress' ? at : null,
      finished_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

function logs(deliveryId: number, count: number, make: (i: number) => Partial<NewDeliveryLog>): NewDeliveryLog[] {
  return Array.from({ length: count }, (_, i) => ({
    delivery_id: deliveryId,
    recipient_id: null,
    email: `r${deliveryId}-${i}@example.com`,
    domain: 'example.com',
    data: '{}',
    status: 'sent' as const,
    attempts: 1,
    next_attempt_at: now - hour,
    claimed_by: null,
    claimed_until: null,
    last_reply_code: 250,
    last_enhanced_status: null,
    last_reply_text: null,
    failure_type: null,
    failure_reason: null,
    failure_category: null,
    mx_host: null,
    sent_at: now - hour,
    updated_at: now - minute,
    ...make(i),
  }));
}

async function insertLogs(store: Store, rows: NewDeliveryLog[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 200)
    await store.db
      .insertInto('delivery_logs')
      .values(rows.slice(i, i + 200))
      .execute();
}

function shapingSnapshot(): ShapingSnapshot {
  const limits = {
    maxConnections: 2,
    maxMessagesPerHour: 1000,
    maxMessagesPerConnection: 100,
    configuredMaxConnections: 2,
    configuredMaxMessagesPerHour: 1000,
  };
  return {
    format: 1,
    nodeId: 'mta-test',
    takenAt: now - 5_000,
    rulesVersion: 'test',
    backend: 'memory',
    periodMs: hour,
    paths: [
      {
        pathId: 'slowmail|0|10.0.0.7',
        rule: 'slowmail',
        mxHost: 'mx.slowmail.test',
        mxIp: '10.0.0.7',
        publicId: 0,
        openConnections: 2,
        messages: 990,
        connectionsAccepted: 40,
        connectionsRefused: 0,
        unreachable: 0,
        deferrals: { '4xx': 0, '5xx': 0, local: 0 },
        lastActivityAt: now - 5_000,
        nodeId: 'mta-test',
        rateKey: 'slowmail|shared',
        limits,
        load: { connections: 1, messagesPerHour: 0.99 },
        waiting: 300,
        binding: 'maxMessagesPerHour',
        bindingReason: '990/1000 messages in the last hour (smoothed: one every 3600 ms)',
      },
    ],
    rules: [
      {
        rateKey: 'slowmail|shared',
        rule: 'slowmail',
        masks: ['*.slowmail.test'],
        shared: true,
        publicId: null,
        limits,
        openConnections: 2,
        messages: 990,
        load: { messagesPerHour: 0.99 },
        waiting: 300,
        binding: 'maxMessagesPerHour',
        bindingReason: '990/1000 messages in the last hour (smoothed: one every 3600 ms)',
        backoffs: [],
      },
    ],
    backoffs: [],
    suspensions: [],
    throttle: {} as ShapingSnapshot['throttle'],
  };
}

describeEachDialect('herald doctor', ({ store, url }) => {
  it('passes a healthy database: exit 0, no finding, every check listed', async () => {
    const run = await doctor(url());
    expect(run.exitCode).toBe(0);
    const text = await doctor(url(), []);
    expect(text.stdout.at(-1)).toMatch(/^all checks passed \(21 checks\)/);
    const json = await doctor(url(), ['--json']);
    expect(json.out).toEqual({
      checkedAt: new Date(now).toISOString(),
      checks: [
        'delivery-stuck',
        'messages',
        'delivery-shaping',
        'delivery-bounces',
        'reputation',
        'unreachable',
        'expired',
        'dns',
        'references',
        'content',
        'preparation',
        'imports',
        'target',
        'list-health',
        'workflows',
        'tracking-lag',
        'database',
        'midsourcing',
        'configuration',
        'open-files',
        'webhooks',
      ],
      findings: [],
      deliveriesNotChecked: 0,
    });
  });

  it('reports a failed workflow run, a hard-bounce delivery and old unconsolidated tracking events; exit 1', async () => {
    await ensureWorkflowRows(store(), ['tracking'], now - 2 * hour);
    const runId = await insertRun(store(), {
      workflow: 'tracking',
      trigger: 'schedule',
      holder: 'node-1/abc',
      scheduledFor: now - 50 * minute,
      missedSlots: 0,
      startStep: 0,
      restartOf: null,
      now: now - 50 * minute,
    });
    await finishRun(store(), runId, {
      status: 'failed',
      failedStep: 0,
      error: 'consolidate: relation "tracking_indicators" is locked',
      now: now - 49 * minute,
    });

    const bounced = await insertDelivery(store(), 'Bounced list', 'in_progress', now - 2 * hour, {
      valid_until: now + 86_400_000,
    });
    await insertLogs(
      store(),
      logs(bounced, 200, (i) =>
        i < 30
          ? {
              status: 'failed',
              failure_type: 'hard',
              failure_reason: i < 25 ? 'user_unknown' : 'invalid_domain',
              last_reply_code: 550,
              sent_at: null,
            }
          : {},
      ),
    );

    await store()
      .db.insertInto('tracking_events')
      .values({
        delivery_id: bounced,
        log_id: 1,
        kind: 'open',
        link_index: null,
        at: now - 5 * hour,
        flags: 0,
        user_agent: null,
      })
      .execute();

    const run = await doctor(url(), ['--json']);
    expect(run.exitCode).toBe(1);
    const byCheck = (check: string) => run.out.findings.filter((f) => f.check === check);
    expect(byCheck('workflows')).toEqual([
      expect.objectContaining({
        severity: 'critical',
        subject: 'workflow tracking',
        cause: 'consolidate: relation "tracking_indicators" is locked',
        evidence: expect.objectContaining({ runId, failedStep: 0 }),
      }),
    ]);
    expect(byCheck('delivery-bounces')).toEqual([
      expect.objectContaining({
        severity: 'critical',
        subject: `delivery ${bounced}`,
        evidence: expect.objectContaining({
          attempted: 200,
          hard: 30,
          user_unknown: 25,
          invalid_domain: 5,
          ratio: 0.15,
        }),
      }),
    ]);
    const [lag] = byCheck('tracking-lag');
    expect(lag).toMatchObject({
      severity: 'warning',
      subject: 'workflow tracking',
      evidence: { waitingEvents: 1, lagMinutes: 300 },
    });
    expect(lag!.cause).toContain('tracking_indicators');
    expect(run.out.findings[0]!.severity).toBe('critical');

    const text = await doctor(url());
    expect(text.exitCode).toBe(1);
    expect(text.stdout[0]).toMatch(/^CRITICAL \(\d+\)$/);
    expect(text.stdout).toContain(`- delivery ${bounced} [delivery-bounces]`);
    expect(
      text.stdout.some((line) => line.includes('fix:     read the step logs with `herald workflows logs tracking`')),
    ).toBe(true);
  });

  it('reports an import left running by a killed process once its lease ran out', async () => {
    // What `herald import recipients` killed with SIGKILL leaves: the import running, staged rows, a stale lease.
    const list = await store()
      .db.insertInto('lists')
      .values({ name: 'killed-import', created_at: now - hour })
      .returning('id')
      .executeTakeFirstOrThrow();
    const killed = await store()
      .db.insertInto('imports')
      .values({
        list_id: list.id,
        file_name: 'big.csv',
        state: 'running',
        read_count: 135_000,
        imported_count: 0,
        updated_count: 0,
        rejected_count: 0,
        started_at: now - 10 * minute,
        updated_at: now - 9 * minute,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const run = await doctor(url(), ['--json']);
    const found = run.out.findings.filter((f) => f.check === 'imports');
    expect(found).toEqual([
      expect.objectContaining({
        severity: 'warning',
        subject: `import ${killed.id}`,
        evidence: expect.objectContaining({ list: 'killed-import', read: 135_000 }),
      }),
    ]);
    await store().db.updateTable('imports').set({ state: 'failed' }).where('id', '=', killed.id).execute();
  });

  it('names a failing webhook without the credentials in its URL', async () => {
    // A subscription made before URLs with a password were refused, and a receiver authenticated by a query token.
    const ids: number[] = [];
    for (const [url, state] of [
      ['https://crm:hunter2@hooks.example.net/herald', 'paused'],
      ['https://hooks.example.net/in?token=s3cr3t-token&team=ops', 'active'],
    ] as const) {
      const row = await insertSubscription(store(), { url, events: ['sent'], secret: 'k'.repeat(32), now: now - hour });
      await store()
        .db.updateTable('webhook_subscriptions')
        .set({
          state,
          consecutive_failures: 7,
          last_error: 'HTTP 500',
          paused_at: state === 'paused' ? now - minute : null,
        })
        .where('id', '=', row.id)
        .execute();
      ids.push(row.id);
    }
    const run = await doctor(url(), ['--json']);
    const found = run.out.findings.filter((f) => f.check === 'webhooks');
    expect(found.map((f) => f.subject).sort()).toEqual(ids.map((id) => `webhook ${id}`).sort());
    const printed = JSON.stringify(found);
    expect(printed).not.toContain('hunter2');
    expect(printed).not.toContain('s3cr3t-token');
    expect(printed).toContain('hooks.example.net/in?token=***&team=ops');
    const text = await doctor(url());
    expect(text.stdout.join('\n')).not.toMatch(/hunter2|s3cr3t-token/);
    await store().db.deleteFrom('webhook_subscriptions').where('id', 'in', ids).execute();
  });

  it('measures a stall from the last outcome, not from a preparation long before the start', async () => {
    const justStarted = await insertDelivery(store(), 'Prepared long ago, just started', 'in_progress', now - minute);
    const stalled = await insertDelivery(store(), 'Stalled', 'in_progress', now - 4 * hour);
    const due = { status: 'pending' as const, attempts: 0, sent_at: null, last_reply_code: null, next_attempt_at: 0 };
    await insertLogs(store(), [
      ...logs(justStarted, 20, () => ({ ...due, updated_at: now - 48 * hour })),
      ...logs(stalled, 5, () => ({ sent_at: now - 3 * hour, updated_at: now - 3 * hour })),
      ...logs(stalled, 20, () => ({ ...due, updated_at: now - 4 * hour })).map((row, i) => ({
        ...row,
        email: `due${i}@example.com`,
      })),
    ]);

    const run = await doctor(url(), ['--json']);
    const stuck = run.out.findings.filter(
      (f) => f.check === 'delivery-stuck' && [`delivery ${justStarted}`, `delivery ${stalled}`].includes(f.subject),
    );
    expect(stuck.map((f) => f.subject)).toEqual([`delivery ${stalled}`]);
    // The last outcome counts to the end of its minute: 179–180 minutes before now.
    const evidence = stuck[0]!.evidence as { duePending: number; stalledMinutes: number };
    expect(evidence.duePending).toBe(20);
    expect(evidence.stalledMinutes).toBeGreaterThanOrEqual(179);
    expect(evidence.stalledMinutes).toBeLessThanOrEqual(180);
    expect(stuck[0]!.symptom).toContain('no message got an outcome for');
  });

  it('reports stuck deliveries and one throttled by an MX rule; --delivery narrows to one', async () => {
    const preparing = await insertDelivery(store(), 'Stuck preparing', 'preparing', now - 3 * hour);
    const scheduled = await insertDelivery(store(), 'Late start', 'start_pending', now - 2 * hour, {
      scheduled_at: now - hour,
    });
    const throttled = await insertDelivery(store(), 'Throttled', 'in_progress', now - 2 * hour, {
      valid_until: now + hour,
    });
    await insertLogs(store(), [
      ...logs(throttled, 50, () => ({ domain: 'slowmail.test', mx_host: 'mx.slowmail.test' })),
      ...logs(throttled, 1500, () => ({
        domain: 'slowmail.test',
        status: 'pending',
        sent_at: null,
        last_reply_code: null,
        next_attempt_at: now + minute,
        updated_at: now - 2 * minute,
      })).map((row, i) => ({ ...row, email: `p${i}@slowmail.test` })),
    ]);
    await writeShapingSnapshot(store(), shapingSnapshot());

    const run = await doctor(url(), ['--json']);
    const about = (id: number) => run.out.findings.filter((f) => f.subject === `delivery ${id}`);
    expect(about(preparing)).toEqual([
      expect.objectContaining({
        check: 'delivery-stuck',
        severity: 'critical',
        evidence: expect.objectContaining({ minutes: 180 }),
      }),
    ]);
    expect(about(scheduled)).toEqual([
      expect.objectContaining({
        check: 'delivery-stuck',
        severity: 'critical',
        evidence: expect.objectContaining({ lateMinutes: 60 }),
      }),
    ]);
    const [shaping] = about(throttled);
    expect(shaping).toMatchObject({
      check: 'delivery-shaping',
      severity: 'critical',
      evidence: {
        rule: 'slowmail',
        pendingBehindRule: 1500,
        maxMessagesPerHour: 1000,
        hoursToDrain: 1.5,
        domains: ['slowmail.test'],
      },
    });
    expect(shaping!.fix).toContain('maxMessagesPerHour of MX rule "slowmail"');
    // The fix quotes the ETA it would give (1,500 messages at twice the configured 1,000 per hour).
    expect(shaping!.fix).toContain('at 2000 per hour these messages would need 45 min');
    expect(shaping!.fix).toContain(`herald delivery eta ${throttled} --set slowmail.maxMessagesPerHour=2000`);

    const one = await doctor(url(), ['--json', '--delivery', String(throttled)]);
    expect(one.out.findings.map((f) => [f.check, f.subject])).toEqual([['delivery-shaping', `delivery ${throttled}`]]);
    expect(one.exitCode).toBe(1);

    const missing = await doctor(url(), ['--json', '--delivery', '99999']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr.join('\n')).toContain('delivery 99999 does not exist');
  });
});
