import { checkConfigSafety, domainOfAddress } from '../config/safety.ts';
import { bounceDomainResolves } from '../config/safety-facts.ts';
import { networkInterfaces } from 'node:os';
import { maskUrl } from '../common/mask-url.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { listOutbound, listParts, localDeliveryStates } from '../midsourcing/outbound-store.ts';
import { summarizeOutbound } from '../midsourcing/status.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { mergeSnapshots } from '../shaping/stats-view.ts';
import { finalDeliveryStates } from '../delivery/state-machine.ts';
import type { Store } from '../store/database.ts';
import type { DeliveryRow } from '../store/tables.ts';
import {
  claimsByNode,
  deliveryFeedbackCounts,
  deliveryReplyGroups,
  lastPartAcks,
  oldestTrackingEventAt,
  oldestUnconsolidatedEventAt,
  overdueUnclaimed,
  purgeableDeliveryLogs,
  runningImports,
  recentlyFinalDeliveries,
  countUnfinishedDeliveries,
  unfinishedDeliveries,
  unfinishedLimit,
} from './doctor-store.ts';
import { measureContent } from './check-content.ts';
import { descriptorUses } from './check-open-files.ts';
import { readOpenFileLimit } from './open-file-limit.ts';
import { countDeliveryLogs } from '../delivery/delivery-store.ts';
import { countDuePending, lastOutcomeAt, topPendingDomains } from '../delivery/progress-store.ts';
import { receivedFromPeer } from '../delivery/preparation-store.ts';
import { consolidationWatermark, lastTrackingEventId, trackingEventPurgeRange } from '../tracking/tracking-store.ts';
import { findOrphanedRuns, latestRunsByWorkflow, listWorkflowRows } from '../workflows/workflow-store.ts';
import { databaseStatus } from '../workflows/db-status.ts';
import { resolveSchedules } from '../workflows/engine.ts';
import { createWorkflowRegistry } from '../workflows/registry.ts';
import { builtinWorkflows } from '../workflows/builtins/index.ts';
import { schedulePeriod } from '../workflows/schedule.ts';
import { listSubscriptions, outboxBacklog } from '../webhooks/webhook-store.ts';
import { parsePreparationWarnings } from '../delivery/preparation-warnings.ts';
import { dayMs, type DoctorSettings } from './finding.ts';
import type {
  ConfigurationFacts,
  DeliveryFacts,
  DoctorSnapshot,
  MidOutboundFacts,
  RetentionFacts,
  WebhookFacts,
  WorkflowFacts,
} from './snapshot.ts';

// The doctor's adapter: reads, once, every fact the checks need, through the same queries as
// `herald mx stats`, `workflows list`, `db status`, `delivery show` and `mid status`. Read-only.

const purgeCountCap = 1_000_000;

export async function readDoctorSnapshot(input: {
  store: Store;
  config: HeraldConfig;
  settings: DoctorSettings;
  now: number;
  deliveryId?: number;
  /** Leave out the configuration facts (no DNS lookup of the bounce domain). */
  skipConfiguration?: boolean;
  /** The roles one `herald start` runs, for the open-files check; absent: every role (its default). */
  roles?: readonly string[];
}): Promise<DoctorSnapshot> {
  const { store, config, settings, now } = input;
  const deliveryRows = await unfinishedDeliveries(store, input.deliveryId);
  const unfinishedRead = deliveryRows.filter((row) => activeStates.has(row.state)).length;
  const listed = new Set(deliveryRows.map((row) => Number(row.id)));
  const recentRows = (await recentlyFinalDeliveries(store, now - settings.recentDays * dayMs)).filter(
    (row) => !listed.has(Number(row.id)),
  );
  const feedback = await deliveryFeedbackCounts(
    store,
    [...deliveryRows, ...recentRows].map((row) => Number(row.id)),
  );
  const deliveries: DeliveryFacts[] = [];
  for (const row of deliveryRows) {
    const scope = activeStates.has(row.state) ? 'active' : 'asked';
    deliveries.push(await deliveryFacts(store, row, now, scope, feedback));
  }
  for (const row of recentRows) deliveries.push(await deliveryFacts(store, row, now, 'recent', feedback));
  const shaping = mergeSnapshots(
    await readShapingSnapshots(store, now - settings.shapingSnapshotMaxAgeSeconds * 1_000),
    now,
  );
  const watermark = await consolidationWatermark(store);
  return {
    takenAt: now,
    deliveries,
    deliveriesNotRead:
      unfinishedRead >= unfinishedLimit ? Math.max(0, (await countUnfinishedDeliveries(store)) - unfinishedRead) : 0,
    shaping,
    workflows: await workflowFacts(store, config, now),
    tracking: {
      watermark,
      lastEventId: await lastTrackingEventId(store),
      oldestPendingAt: await oldestUnconsolidatedEventAt(store, watermark),
    },
    database: await databaseStatus(store),
    retention: await retentionFacts(store, settings, now),
    midsourcing: await midFacts(store),
    configurationWarnings: input.skipConfiguration
      ? []
      : checkConfigSafety(config, {
          fromDomains: sendingFromDomains(deliveryRows),
          bounceDomainResolves: await bounceDomainResolves(config),
        }),
    configuration: configurationFacts(config),
    messages: {
      claims: await claimsByNode(store, now),
      overdue: await overdueUnclaimed(store, now - settings.overdueMessagesHours * 3_600_000),
    },
    webhooks: await webhookFacts(store),
    imports: await runningImports(store),
    // `herald start` runs every role by default; the limit is this process's (the same shell's).
    openFiles: {
      roles: input.roles?.join(',') ?? 'all',
      uses: descriptorUses(config, input.roles),
      limit: await readOpenFileLimit(),
    },
  };
}

/** From domains of the deliveries that will send (a delivery pushed to an execution instance is signed there). */
function sendingFromDomains(rows: DeliveryRow[]): string[] {
  return rows.filter((row) => row.execution_peer === null).flatMap((row) => domainOfAddress(row.from_address) ?? []);
}

const activeStates = new Set<string>(['preparing', 'prepared', 'start_pending', 'in_progress', 'paused']);
const repliesStates = new Set<string>(['in_progress', 'paused', 'finished', 'stopped', 'failed']);

function configurationFacts(config: HeraldConfig): ConfigurationFacts {
  let localAddresses: string[] | null = null;
  try {
    localAddresses = Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  } catch {
    localAddresses = null;
  }
  return {
    affinities: config.shaping.affinities.map((affinity) => ({
      name: affinity.name,
      addresses: affinity.addresses.map(({ address, heloName, publicId, weight }) => ({
        address,
        heloName,
        publicId,
        weight,
      })),
    })),
    localAddresses,
    resolverServers: [...config.mta.resolverServers],
    midPeers: config.midsourcing.peers.map((peer) => peer.name),
  };
}

function parseExclusions(json: string): Record<string, number> {
  try {
    const value = JSON.parse(json) as unknown;
    if (value === null || typeof value !== 'object') return {};
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([key, n]) => [key, Number(n) || 0]),
    );
  } catch {
    return {};
  }
}

async function deliveryFacts(
  store: Store,
  row: DeliveryRow,
  now: number,
  scope: DeliveryFacts['scope'],
  feedback: Map<number, { complaints: number; unsubscribes: number }>,
): Promise<DeliveryFacts> {
  // From the counters the triggers keep (a few rows per delivery), and the due ones from the index
  // of pending logs: nothing here reads every log of a large delivery.
  const { byStatus, byReason, total } = await countDeliveryLogs(store, row.id);
  const pending = byStatus.pending + byStatus.sending;
  const failedWithReason = Object.values(byReason).reduce((a, b) => a + b, 0);
  const failedByReason =
    byStatus.failed > failedWithReason ? { ...byReason, not_defined: byStatus.failed - failedWithReason } : byReason;
  const pendingInProgress = pending > 0 && row.state === 'in_progress';
  return {
    id: Number(row.id),
    name: row.name,
    state: row.state,
    scope,
    affinity: row.affinity,
    listId: row.list_id === null ? null : Number(row.list_id),
    lastError: row.last_error,
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    target: {
      count: Number(row.target_count),
      excluded: Number(row.excluded_count),
      exclusions: parseExclusions(row.exclusions),
    },
    content: measureContent(row.html_template, row.text_template),
    preparationWarnings: parsePreparationWarnings(row.preparation_warnings),
    // Only deliveries that attempted something have replies (a prepared one would be a scan for nothing).
    replies: scope === 'recent' || !repliesStates.has(row.state) ? [] : await deliveryReplyGroups(store, row.id),
    feedback: feedback.get(Number(row.id)) ?? { complaints: 0, unsubscribes: 0 },
    executionPeer: row.execution_peer,
    receivedFrom: row.state === 'preparing' ? ((await receivedFromPeer(store, row.id)) ?? null) : null,
    updatedAt: Number(row.updated_at),
    scheduledAt: row.scheduled_at === null ? null : Number(row.scheduled_at),
    startedAt: row.started_at === null ? null : Number(row.started_at),
    validUntil: row.valid_until === null ? null : Number(row.valid_until),
    counts: {
      total,
      sent: byStatus.sent,
      failed: byStatus.failed,
      ignored: byStatus.ignored,
      pending,
      cancelled: byStatus.cancelled,
    },
    failedByReason,
    duePending: pending > 0 ? await countDuePending(store, row.id, now) : 0,
    lastLogUpdateAt: await lastOutcomeAt(store, row.id, now),
    pendingByDomain: pendingInProgress ? await topPendingDomains(store, row.id) : [],
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
      running: running
        ? { id: Number(running.id), holder: running.holder, startedAt: Number(running.started_at) }
        : null,
      lease: row?.lease_holder ? { holder: row.lease_holder, expiresAt: Number(row.lease_expires_at ?? 0) } : null,
    };
  });
}

async function retentionFacts(store: Store, settings: DoctorSettings, now: number): Promise<RetentionFacts> {
  const logs = await purgeableDeliveryLogs(
    store,
    { before: now - settings.retention.deliveryLogsDays * dayMs, finalStates: finalDeliveryStates },
    purgeCountCap,
  );
  const eventsBefore = now - settings.retention.trackingLogsDays * dayMs;
  const oldestEventAt = await oldestTrackingEventAt(store);
  const range =
    oldestEventAt !== null && oldestEventAt < eventsBefore
      ? await trackingEventPurgeRange(store, eventsBefore)
      : undefined;
  return {
    deliveryLogs: { purgeable: logs.count, capped: logs.capped, oldestAt: logs.oldestAt },
    trackingEvents: { purgeable: range ? range.max - range.min + 1 : 0, oldestAt: oldestEventAt },
  };
}

async function midFacts(store: Store): Promise<MidOutboundFacts[]> {
  const rows = await listOutbound(store);
  if (rows.length === 0) return [];
  const states = await localDeliveryStates(
    store,
    rows.map((row) => Number(row.delivery_id)),
  );
  const acks = await lastPartAcks(store);
  const out: MidOutboundFacts[] = [];
  for (const row of rows) {
    const deliveryId = Number(row.delivery_id);
    out.push({
      status: summarizeOutbound(row, await listParts(store, deliveryId), states.get(deliveryId) ?? null),
      pushStartedAt: row.push_started_at === null ? null : Number(row.push_started_at),
      updatedAt: Number(row.updated_at),
      lastAckAt: acks.get(deliveryId) ?? null,
      finalizedAt: row.finalized_at === null ? null : Number(row.finalized_at),
    });
  }
  return out;
}

async function webhookFacts(store: Store): Promise<WebhookFacts[]> {
  const backlog = await outboxBacklog(store);
  // The doctor's output lands in tickets and monitoring: a password (a subscription older than
  // their refusal) or a `?token=` the receiver checks stays out of it, as out of the logs.
  return (await listSubscriptions(store)).map((row) => ({
    id: row.id,
    url: maskUrl(row.url),
    state: row.state,
    consecutiveFailures: Number(row.consecutive_failures),
    lastError: row.last_error === null ? null : row.last_error.split(row.url).join(maskUrl(row.url)),
    lastSuccessAt: row.last_success_at,
    pausedAt: row.paused_at,
    backlog: backlog.get(row.id) ?? 0,
  }));
}
