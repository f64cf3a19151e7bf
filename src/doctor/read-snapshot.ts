import type { HeraldConfig } from '../config/schema.ts';
import { listOutbound, listParts, localDeliveryStates } from '../midsourcing/outbound-store.ts';
import { summarizeOutbound } from '../midsourcing/status.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { mergeSnapshots } from '../shaping/stats-view.ts';
import type { Store } from '../store/database.ts';
import {
  deliveryLogFigures,
  lastPartAcks,
  oldestTrackingEventAt,
  oldestUnconsolidatedEventAt,
  pendingDomains,
  purgeableDeliveryLogs,
  unfinishedDeliveries,
  type DoctorDeliveryRow,
} from '../store/doctor-queries.ts';
import { consolidationWatermark, lastTrackingEventId, trackingEventPurgeRange } from '../store/tracking-queries.ts';
import { findOrphanedRuns, latestRunsByWorkflow, listWorkflowRows } from '../store/workflow-queries.ts';
import { databaseStatus } from '../workflows/db-status.ts';
import { resolveSchedules } from '../workflows/engine.ts';
import { createWorkflowRegistry } from '../workflows/registry.ts';
import { builtinWorkflows } from '../workflows/builtins/index.ts';
import { schedulePeriod } from '../workflows/schedule.ts';
import { dayMs, type DoctorSettings } from './finding.ts';
import type { DeliveryFacts, DoctorSnapshot, MidOutboundFacts, RetentionFacts, WorkflowFacts } from './snapshot.ts';

// The doctor's adapter: reads, once, every fact the checks need, through the same queries as
// `herald mx stats`, `workflows list`, `db status`, `delivery show` and `mid status`. Read-only.

const purgeCountCap = 1_000_000;

export async function readDoctorSnapshot(input: { store: Store; config: HeraldConfig; settings: DoctorSettings; now: number; deliveryId?: number }): Promise<DoctorSnapshot> {
  const { store, config, settings, now } = input;
  const deliveryRows = await unfinishedDeliveries(store, input.deliveryId);
  const deliveries: DeliveryFacts[] = [];
  for (const row of deliveryRows) deliveries.push(await deliveryFacts(store, row, now));
  const shaping = mergeSnapshots(await readShapingSnapshots(store.db, now - settings.shapingSnapshotMaxAgeSeconds * 1_000), now);
  const watermark = await consolidationWatermark(store);
  return {
    takenAt: now,
    deliveries,
    shaping,
    workflows: await workflowFacts(store, config, now),
    tracking: { watermark, lastEventId: await lastTrackingEventId(store), oldestPendingAt: await oldestUnconsolidatedEventAt(store, watermark) },
    database: await databaseStatus(store),
    retention: await retentionFacts(store, settings, now),
    midsourcing: await midFacts(store),
  };
}

async function deliveryFacts(store: Store, row: DoctorDeliveryRow, now: number): Promise<DeliveryFacts> {
  const figures = await deliveryLogFigures(store, row.id, now);
  const count = (status: string) => figures.byStatus[status] ?? 0;
  const pending = count('pending') + count('sending');
  return {
    id: Number(row.id),
    name: row.name,
    state: row.state,
    executionPeer: row.execution_peer,
    updatedAt: Number(row.updated_at),
    scheduledAt: row.scheduled_at === null ? null : Number(row.scheduled_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    validUntil: row.valid_until === null ? null : Number(row.valid_until),
    counts: {
      total: Object.values(figures.byStatus).reduce((a, b) => a + b, 0),
      sent: count('sent'),
      failed: count('failed'),
      ignored: count('ignored'),
      pending,
      cancelled: count('cancelled'),
    },
    failedByReason: figures.failedByReason,
    duePending: figures.duePending,
    lastLogUpdateAt: figures.lastUpdateAt,
    pendingByDomain: pending > 0 && row.state === 'in_progress' ? await pendingDomains(store, row.id) : [],
  };
}

async function workflowFacts(store: Store, config: HeraldConfig, now: number): Promise<WorkflowFacts[]> {
  const scheduled = resolveSchedules(createWorkflowRegistry(builtinWorkflows()), config);
  const rows = new Map((await listWorkflowRows(store)).map((row) => [row.name, row]));
  const runs = await latestRunsByWorkflow(store);
  const orphans = await findOrphanedRuns(store, now);
  return scheduled.map(({ definition, schedule, enabled }) => {
    const row = rows.get(definition.name);
    const latest = runs.get(definition.name);
    const finished = latest?.lastFinished;
    const last = latest?.last;
    const orphan = orphans.find((run) => run.workflow === definition.name);
    const running = orphan ?? (last?.status === 'running' ? last : undefined);
    return {
      name: definition.name,
      schedule: schedule.expression,
      periodMs: schedulePeriod(schedule, now),
      enabled,
      pausedAt: row?.paused_at == null ? null : Number(row.paused_at),
      registeredAt: row ? Number(row.created_at) : now,
      lastSuccessAt: latest?.lastSuccessAt ?? null,
      lastFinished: finished
        ? {
            id: Number(finished.id),
            status: finished.status as 'succeeded' | 'failed' | 'skipped',
            startedAt: Number(finished.started_at),
            finishedAt: finished.finished_at === null ? null : Number(finished.finished_at),
            failedStep: finished.failed_step,
            error: finished.error,
          }
        : null,
      running: running ? { id: Number(running.id), holder: running.holder, startedAt: Number(running.started_at) } : null,
      lease: row?.lease_holder ? { holder: row.lease_holder, expiresAt: Number(row.lease_expires_at ?? 0) } : null,
    };
  });
}

async function retentionFacts(store: Store, settings: DoctorSettings, now: number): Promise<RetentionFacts> {
  const logs = await purgeableDeliveryLogs(store, now - settings.retention.deliveryLogsDays * dayMs, purgeCountCap);
  const eventsBefore = now - settings.retention.trackingLogsDays * dayMs;
  const oldestEventAt = await oldestTrackingEventAt(store);
  const range = oldestEventAt !== null && oldestEventAt < eventsBefore ? await trackingEventPurgeRange(store, eventsBefore) : undefined;
  return {
    deliveryLogs: { purgeable: logs.count, capped: logs.capped, oldestAt: logs.oldestAt },
    trackingEvents: { purgeable: range ? range.max - range.min + 1 : 0, oldestAt: oldestEventAt },
  };
}

async function midFacts(store: Store): Promise<MidOutboundFacts[]> {
  const rows = await listOutbound(store);
  if (rows.length === 0) return [];
  const states = await localDeliveryStates(store, rows.map((row) => Number(row.delivery_id)));
  const acks = await lastPartAcks(store);
  const out: MidOutboundFacts[] = [];
  for (const row of rows) {
    const deliveryId = Number(row.delivery_id);
    out.push({
      status: summarizeOutbound(row, await listParts(store, deliveryId), states.get(deliveryId) ?? null),
      pushStartedAt: row.push_started_at === null ? null : Number(row.push_started_at),
      updatedAt: Number(row.updated_at),
      lastAckAt: acks.get(deliveryId) ?? null,
    });
  }
  return out;
}
