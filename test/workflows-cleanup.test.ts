import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Store } from '../src/store/database.ts';
import type { DeliveryLogStatus, DeliveryState } from '../src/store/tables.ts';
import { listRuns, listStepLogs, listSteps } from '../src/workflows/workflow-store.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';

const day = 86_400_000;
const now = Date.parse('2026-06-01T04:00:00Z');

async function addDelivery(
  store: Store,
  name: string,
  state: DeliveryState,
  changes: { valid_until?: number | null; updated_at?: number } = {},
): Promise<number> {
  const row = await store.db
    .insertInto('deliveries')
    .values({
      name,
      state,
      from_address: 'news@example.test',
      from_name: null,
      reply_to: null,
      subject_template: 'hi',
      html_template: null,
      text_template: 'x',
      list_id: null,
      affinity: null,
      validity_seconds: 3600,
      valid_until: changes.valid_until ?? null,
      scheduled_at: null,
      last_error: null,
      created_at: now - 300 * day,
      updated_at: changes.updated_at ?? now - 300 * day,
      prepared_at: null,
      started_at: null,
      finished_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

async function addLogs(
  store: Store,
  deliveryId: number,
  count: number,
  status: DeliveryLogStatus,
  updatedAt: number,
  prefix: string,
): Promise<void> {
  for (let start = 0; start < count; start += 500) {
    const rows = Array.from({ length: Math.min(500, count - start) }, (_, i) => ({
      delivery_id: deliveryId,
      recipient_id: null,
      email: `${prefix}${start + i}@example.test`,
      domain: 'example.test',
      data: '{}',
      status,
      attempts: status === 'pending' ? 0 : 1,
      next_attempt_at: updatedAt,
      claimed_by: null,
      claimed_until: null,
      last_reply_code: null,
      last_enhanced_status: null,
      last_reply_text: null,
      failure_type: null,
      failure_reason: null,
      failure_category: null,
      mx_host: null,
      sent_at: null,
      updated_at: updatedAt,
    }));
    await store.db.insertInto('delivery_logs').values(rows).execute();
  }
}

async function countLogs(store: Store, deliveryId: number, status?: DeliveryLogStatus): Promise<number> {
  let query = store.db
    .selectFrom('delivery_logs')
    .select(sql<number>`count(*)`.as('n'))
    .where('delivery_id', '=', deliveryId);
  if (status) query = query.where('status', '=', status);
  return Number((await query.executeTakeFirstOrThrow()).n);
}

describeEachDialect('cleanup workflow', (context) => {
  it('purges in bounded batches, keeps recent and unfinished data, finishes expired deliveries, then maintains the database', async () => {
    const store = context.store();
    const old = now - 200 * day;
    const recent = now - 10 * day;
    const finished = await addDelivery(store, 'finished', 'finished');
    await addLogs(store, finished, 2_000, 'sent', old, 'old-sent-');
    await addLogs(store, finished, 500, 'failed', old, 'old-failed-');
    await addLogs(store, finished, 400, 'sent', recent, 'recent-');
    const running = await addDelivery(store, 'running', 'in_progress', { valid_until: now + day });
    await addLogs(store, running, 300, 'sent', old, 'running-sent-');
    const expired = await addDelivery(store, 'expired', 'in_progress', { valid_until: now - 3_600_000 });
    await addLogs(store, expired, 1_200, 'pending', recent, 'expired-pending-');
    await addLogs(store, expired, 50, 'sent', recent, 'expired-sent-');
    const deletedLongAgo = await addDelivery(store, 'deleted-old', 'deleted', { updated_at: now - 8 * day });
    await addLogs(store, deletedLongAgo, 1_100, 'sent', recent, 'deleted-');
    const deletedRecently = await addDelivery(store, 'deleted-new', 'deleted', { updated_at: now - 2 * day });
    await addLogs(store, deletedRecently, 10, 'sent', recent, 'deleted-new-');

    const list = await store.db
      .insertInto('lists')
      .values({ name: 'cleanup-list', created_at: old })
      .returning('id')
      .executeTakeFirstOrThrow();
    const imported = await store.db
      .insertInto('imports')
      .values({
        list_id: list.id,
        file_name: 'a.csv',
        state: 'finished',
        read_count: 0,
        imported_count: 0,
        updated_count: 0,
        rejected_count: 0,
        error: null,
        started_at: old,
        finished_at: old,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const reject = (line: number, at: number) => ({
      import_id: imported.id,
      line,
      reason: 'invalid',
      excerpt: 'x',
      created_at: at,
    });
    await store.db
      .insertInto('import_rejects')
      .values(Array.from({ length: 300 }, (_, i) => reject(i, now - 40 * day)))
      .execute();
    await store.db
      .insertInto('import_rejects')
      .values(Array.from({ length: 20 }, (_, i) => reject(1_000 + i, now - day)))
      .execute();

    const db = store.db;
    const oldRun = {
      workflow: 'stats',
      status: 'succeeded' as const,
      trigger: 'schedule' as const,
      holder: 'n/1',
      scheduled_for: null,
      missed_slots: 1,
      start_step: 0,
      restart_of: null,
      failed_step: null,
      error: null,
    };
    await db
      .insertInto('workflow_runs')
      .values([40, 39, 38].map((d) => ({ ...oldRun, started_at: now - d * day, finished_at: now - d * day })))
      .execute();

    // Raw tracking events: 2,300 past the 365-day retention (three batches of 1,000), 40 recent ones.
    const event = (i: number, at: number) => ({
      delivery_id: finished,
      log_id: i,
      kind: 'click' as const,
      link_index: 0,
      at,
      flags: 0,
      user_agent: null,
    });
    for (let start = 0; start < 2_300; start += 500) {
      await store.db
        .insertInto('tracking_events')
        .values(
          Array.from({ length: 500 }, (_, i) => event(start + i, now - 400 * day + start + i)).slice(0, 2_300 - start),
        )
        .execute();
    }
    await store.db
      .insertInto('tracking_events')
      .values(Array.from({ length: 40 }, (_, i) => event(i, now - 364 * day + i)))
      .execute();

    const logIds = await store.db
      .selectFrom('delivery_logs')
      .select((eb) => [eb.fn.min('id').as('min'), eb.fn.max('id').as('max')])
      .executeTakeFirstOrThrow();
    const expectedWindows = Math.ceil((Number(logIds.max) - Number(logIds.min) + 1) / 1_000);

    const clock = manualClock(now);
    const config = parseConfig({ workflows: { cleanup: { batchSize: 1_000 } } }, 'test');
    const engine = createWorkflowEngine({
      store,
      config,
      clock,
      logger: silentLogger,
      nodeId: 'node-a',
      ticker: manualTicker,
    });
    const result = await engine.runNow('cleanup');
    expect(result).toMatchObject({ status: 'succeeded', error: null });

    const steps = await listSteps(store, result.runId);
    expect(steps.map((s) => [s.name, s.status])).toEqual([
      ['expire-deliveries', 'succeeded'],
      ['purge-delivery-logs', 'succeeded'],
      ['purge-deleted-deliveries', 'succeeded'],
      ['fail-stale-imports', 'succeeded'],
      ['purge-import-rejects', 'succeeded'],
      ['purge-tracking-events', 'succeeded'],
      ['purge-address-events', 'succeeded'],
      ['purge-qualification-samples', 'succeeded'],
      ['purge-workflow-history', 'succeeded'],
      ['purge-mid-log-changes', 'succeeded'],
      ['purge-mid-seen-requests', 'succeeded'],
      ['database-maintenance', 'succeeded'],
    ]);
    const messages = (await listStepLogs(store, result.runId)).map((l) => l.message);
    expect(messages).toContain(
      `delivery logs older than 180 days: deleted 2500 rows in ${expectedWindows} batches of at most 1000`,
    );
    expect(messages).toContain(`delivery ${expired} past its validity: finished, 1200 pending log(s) cancelled`);
    // 1,100 logs at 1,000 per batch: two deleting batches and the empty one that ends the loop.
    expect(messages).toContain('deleted deliveries older than 7 days: 1 purged with 1100 logs in 3 batches');
    expect(messages.some((m) => m.startsWith('import rejects older than 30 days: deleted 300 rows in '))).toBe(true);
    expect(messages).toContain(
      'raw tracking events older than 365 days: deleted 2300 rows in 3 batches of at most 1000',
    );
    expect(messages.some((m) => m.startsWith('workflow history older than 30 days: 2 runs deleted'))).toBe(true);
    expect(
      messages.some((m) =>
        context.dialect === 'sqlite' ? m.startsWith('ANALYZE done') : m === 'VACUUM (ANALYZE) delivery_logs',
      ),
    ).toBe(true);

    expect(await countLogs(store, finished)).toBe(400);
    expect(await countLogs(store, running)).toBe(300);
    expect(await countLogs(store, expired, 'cancelled')).toBe(1_200);
    expect(await countLogs(store, expired, 'pending')).toBe(0);
    expect(await countLogs(store, deletedLongAgo)).toBe(0);
    expect(await countLogs(store, deletedRecently)).toBe(10);
    const deliveries = await store.db
      .selectFrom('deliveries')
      .select(['id', 'state', 'finished_at'])
      .orderBy('id')
      .execute();
    expect(deliveries.map((d) => d.id)).not.toContain(deletedLongAgo);
    expect(deliveries.find((d) => d.id === expired)).toMatchObject({ state: 'finished', finished_at: now });
    const cancelled = await store.db
      .selectFrom('delivery_logs')
      .select('failure_reason')
      .where('delivery_id', '=', expired)
      .where('status', '=', 'cancelled')
      .executeTakeFirstOrThrow();
    expect(cancelled.failure_reason).toBe('expired');
    const rejects = await store.db
      .selectFrom('import_rejects')
      .select(sql<number>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(rejects.n)).toBe(20);
    const events = await store.db.selectFrom('tracking_events').select('at').orderBy('at').execute();
    expect(events.map((e) => Number(e.at))).toEqual(Array.from({ length: 40 }, (_, i) => now - 364 * day + i));
    expect((await listRuns(store, 'stats', 10)).map((r) => r.started_at)).toEqual([now - 38 * day]);
  });

  it('stops at the first failing task, reports it, and resumes there on restart', async () => {
    const store = context.store();
    const clock = manualClock(now + day);
    const config = parseConfig({}, 'test');
    const engine = createWorkflowEngine({
      store,
      config,
      clock,
      logger: silentLogger,
      nodeId: 'node-a',
      ticker: manualTicker,
    });
    // A broken table under task 4 (purge-import-rejects): the tasks before it ran, the ones after did not.
    await sql`alter table import_rejects rename to import_rejects_away`.execute(store.db);
    try {
      const failed = await engine.runNow('cleanup');
      expect(failed).toMatchObject({ status: 'failed', failedStep: 4, failedStepName: 'purge-import-rejects' });
      expect((await listSteps(store, failed.runId)).map((s) => s.status)).toEqual([
        'succeeded',
        'succeeded',
        'succeeded',
        'succeeded',
        'failed',
      ]);
    } finally {
      await sql`alter table import_rejects_away rename to import_rejects`.execute(store.db);
    }
    const restarted = await engine.restart('cleanup');
    expect(restarted.status).toBe('succeeded');
    expect((await listSteps(store, restarted.runId)).map((s) => s.name)).toEqual([
      'purge-import-rejects',
      'purge-tracking-events',
      'purge-address-events',
      'purge-qualification-samples',
      'purge-workflow-history',
      'purge-mid-log-changes',
      'purge-mid-seen-requests',
      'database-maintenance',
    ]);
  });
  it('purges old address events, inbound samples and undecided qualification entries; keeps recent ones and decisions', async () => {
    const store = context.store();
    const at = now + 3 * day;
    const addressEvent = (email: string, eventAt: number) => ({
      email,
      at: eventAt,
      source: 'smtp',
      delivery_id: null,
      delivery_log_id: null,
      reply_text: null,
      category: null,
      reason: null,
      type: 'soft',
      rule_id: null,
      pack_version: null,
      state_before: 'valid',
      state_after: 'with_errors',
      error_count: 1,
      counted: 1,
      note: null,
    });
    await store.db
      .insertInto('address_events')
      .values([
        ...Array.from({ length: 30 }, (_, i) => addressEvent(`old${i}@example.test`, at - 500 * day + i)),
        ...Array.from({ length: 5 }, (_, i) => addressEvent(`new${i}@example.test`, at - 10 * day + i)),
      ])
      .execute();
    const sample = (receivedAt: number) => ({
      received_at: receivedAt,
      problem: 'not_bounce',
      detail: 'x',
      remote_address: null,
      mail_from: null,
      rcpt_to: null,
      size: 1,
      truncated: 0,
      raw: 'x',
    });
    await store.db
      .insertInto('inbound_samples')
      .values([sample(at - 100 * day), sample(at - 95 * day), sample(at - day)])
      .execute();
    const entry = (signature: string, lastSeen: number, status: 'to_qualify' | 'keep' | 'ignore') => ({
      signature,
      source: 'bounce',
      reply_code: 550,
      enhanced_status: '5.1.1',
      pattern: signature,
      example: signature,
      example_log_id: null,
      count: 1,
      first_seen_at: lastSeen,
      last_seen_at: lastSeen,
      status,
      rule_id: null,
      category: null,
      updated_at: lastSeen,
    });
    await store.db
      .insertInto('qualification_entries')
      .values([
        entry('stale', at - 200 * day, 'to_qualify'),
        entry('kept', at - 200 * day, 'keep'),
        entry('fresh', at - day, 'to_qualify'),
      ])
      .execute();
    await store.db
      .insertInto('inbound_messages')
      .values([
        { identity: 'old', received_at: at - 11 * day },
        { identity: 'recent', received_at: at - 9 * day },
      ])
      .execute();

    const engine = createWorkflowEngine({
      store,
      config: parseConfig({}, 'test'),
      clock: manualClock(at),
      logger: silentLogger,
      nodeId: 'node-a',
      ticker: manualTicker,
    });
    const result = await engine.runNow('cleanup');
    expect(result).toMatchObject({ status: 'succeeded' });
    const messages = (await listStepLogs(store, result.runId)).map((l) => l.message);
    expect(messages).toContain('address events older than 400 days: deleted 30 rows in 1 batches');
    expect(messages).toContain(
      'qualification samples older than 90 days: deleted 2 inbound samples and 1 undecided qualification entries; inbound message identities older than 10 days: deleted 1',
    );
    const identities = await store.db.selectFrom('inbound_messages').select('identity').execute();
    expect(identities.map((row) => row.identity)).toEqual(['recent']);
    const emails = await store.db
      .selectFrom('address_events')
      .select('email')
      .where('email', 'like', '%@example.test')
      .execute();
    expect(emails.map((e) => e.email).sort()).toEqual(Array.from({ length: 5 }, (_, i) => `new${i}@example.test`));
    expect(
      (await store.db.selectFrom('inbound_samples').select('received_at').execute()).map((s) => Number(s.received_at)),
    ).toEqual([at - day]);
    const signatures = await store.db
      .selectFrom('qualification_entries')
      .select('signature')
      .orderBy('signature')
      .execute();
    expect(signatures.map((s) => s.signature)).toEqual(['fresh', 'kept']);
  });
});
