import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Store } from '../src/store/database.ts';
import type { DeliveryLogStatus, DeliveryState } from '../src/store/tables.ts';
import { listSteps } from '../src/workflows/workflow-store.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';
import { listDelayed } from '../src/workflows/builtins/delivery-manager-store.ts';
import { hourMs, statsForHours } from '../src/workflows/builtins/delivery-stats-store.ts';

const now = Date.parse('2026-07-01T10:20:00Z');
const minute = 60_000;

async function addDelivery(
  store: Store,
  name: string,
  state: DeliveryState,
  changes: { scheduled_at?: number; started_at?: number } = {},
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
      validity_seconds: 7_200,
      valid_until: null,
      scheduled_at: changes.scheduled_at ?? null,
      last_error: null,
      created_at: now - 86_400_000,
      updated_at: now - 86_400_000,
      prepared_at: null,
      started_at: changes.started_at ?? null,
      finished_at: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

let serial = 0;
async function addLog(
  store: Store,
  deliveryId: number,
  status: DeliveryLogStatus,
  updatedAt: number,
  extra: { domain?: string; mx_host?: string | null; attempts?: number } = {},
) {
  serial += 1;
  await store.db
    .insertInto('delivery_logs')
    .values({
      delivery_id: deliveryId,
      recipient_id: null,
      email: `r${serial}@${extra.domain ?? 'example.test'}`,
      domain: extra.domain ?? 'example.test',
      data: '{}',
      status,
      attempts: extra.attempts ?? 1,
      next_attempt_at: updatedAt,
      claimed_by: null,
      claimed_until: null,
      last_reply_code: null,
      last_enhanced_status: null,
      last_reply_text: null,
      failure_type: null,
      failure_reason: null,
      failure_category: null,
      mx_host: extra.mx_host === undefined ? 'mx.example.test' : extra.mx_host,
      sent_at: null,
      updated_at: updatedAt,
    })
    .execute();
}

describeEachDialect('built-in workflows', (context) => {
  const engineAt = (store: Store, at: number) =>
    createWorkflowEngine({
      store,
      config: parseConfig({}, 'test'),
      clock: manualClock(at),
      logger: silentLogger,
      nodeId: 'node-a',
      ticker: manualTicker,
    });

  it('delivery-manager starts due scheduled deliveries and flags (then unflags) stalled ones', async () => {
    const store = context.store();
    const due = await addDelivery(store, 'due', 'start_pending', { scheduled_at: now - minute });
    const later = await addDelivery(store, 'later', 'start_pending', { scheduled_at: now + 60 * minute });
    const stalled = await addDelivery(store, 'stalled', 'in_progress', { started_at: now - 120 * minute });
    await addLog(store, stalled, 'pending', now - 45 * minute);
    const moving = await addDelivery(store, 'moving', 'in_progress', { started_at: now - 120 * minute });
    await addLog(store, moving, 'sent', now - 5 * minute);
    const fresh = await addDelivery(store, 'fresh', 'in_progress', { started_at: now - 10 * minute });

    const result = await engineAt(store, now).runNow('delivery-manager');
    expect(result.status).toBe('succeeded');
    const rows = await store.db
      .selectFrom('deliveries')
      .select(['id', 'state', 'started_at', 'valid_until'])
      .where('id', 'in', [due, later])
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { id: due, state: 'in_progress', started_at: now, valid_until: now + 7_200_000 },
      { id: later, state: 'start_pending', started_at: null, valid_until: null },
    ]);
    expect(await listDelayed(store)).toEqual([
      { deliveryId: stalled, lastProgressAt: now - 45 * minute, flaggedAt: now },
    ]);
    expect((await listSteps(store, result.runId)).map((s) => s.summary)).toEqual([
      '1 started',
      '1 delayed, 0 no longer delayed',
      '0 preparations failed as interrupted, 0 logs deleted',
      '0 pending logs of 0 stopped deliveries cancelled',
      '0 delivery counters folded',
    ]);
    expect(fresh).toBeGreaterThan(0);

    // The stalled delivery sends again: its flag goes.
    await addLog(store, stalled, 'sent', now + minute);
    await engineAt(store, now + 2 * minute).runNow('delivery-manager');
    expect(await listDelayed(store)).toEqual([]);
  });

  it('stats aggregates sent, failed and deferred per delivery, domain and MX host per hour', async () => {
    const store = context.store();
    const hour = Math.floor(now / hourMs) * hourMs - hourMs;
    const delivery = await addDelivery(store, 'stats', 'in_progress', { started_at: hour });
    await addLog(store, delivery, 'sent', hour + minute, { domain: 'a.test', mx_host: 'mx1.a.test' });
    await addLog(store, delivery, 'sent', hour + 2 * minute, { domain: 'a.test', mx_host: 'mx1.a.test' });
    await addLog(store, delivery, 'failed', hour + 3 * minute, { domain: 'a.test', mx_host: 'mx1.a.test' });
    await addLog(store, delivery, 'pending', hour + 4 * minute, {
      domain: 'b.test',
      mx_host: 'mx.b.test',
      attempts: 2,
    });
    await addLog(store, delivery, 'pending', hour + 5 * minute, {
      domain: 'b.test',
      mx_host: 'mx.b.test',
      attempts: 0,
    });
    await addLog(store, delivery, 'failed', hour + 6 * minute, { domain: 'c.test', mx_host: null });
    await addLog(store, delivery, 'sent', hour + hourMs + minute, { domain: 'a.test', mx_host: 'mx1.a.test' });

    const result = await engineAt(store, now).runNow('stats');
    expect(result.status).toBe('succeeded');
    const rows = await statsForHours(store, hour, hour + 2 * hourMs);
    expect(rows.filter((r) => r.delivery_id === delivery).map(({ delivery_id: _d, ...rest }) => rest)).toEqual([
      { hour, domain: 'a.test', mx_host: 'mx1.a.test', sent: 2, failed: 1, deferred: 0 },
      { hour, domain: 'b.test', mx_host: 'mx.b.test', sent: 0, failed: 0, deferred: 1 },
      { hour, domain: 'c.test', mx_host: '', sent: 0, failed: 1, deferred: 0 },
      { hour: hour + hourMs, domain: 'a.test', mx_host: 'mx1.a.test', sent: 1, failed: 0, deferred: 0 },
    ]);
    // Running again recomputes rather than adds.
    await engineAt(store, now + minute).runNow('stats');
    expect(
      (await statsForHours(store, hour, hour + 2 * hourMs)).filter((r) => r.delivery_id === delivery),
    ).toHaveLength(4);
  });

  it('reports deliverability-update as skipped (not configured) while deliverability.source is empty, never as a success', async () => {
    const store = context.store();
    const engine = engineAt(store, now);
    for (const name of ['deliverability-update']) {
      const result = await engine.runNow(name);
      expect(result.status).toBe('skipped');
      const [step] = await listSteps(store, result.runId);
      expect(step).toMatchObject({ status: 'skipped' });
      expect(step!.summary).toMatch(/^not configured/);
    }
    const statuses = await engine.status();
    expect(statuses.find((s) => s.name === 'deliverability-update')).toMatchObject({
      state: 'idle',
      health: 'not_configured',
      lastSuccessAt: null,
    });
  });
});
