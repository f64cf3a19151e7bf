import { purgeInboundMessagesBatch } from '../../bounce/qualification-store.ts';
import { cancelPendingLogsBatch } from '../../delivery/delivery-store.ts';
import { purgeMaintenanceHistory } from '../maintenance-store.ts';
import { purgeMidLogChanges } from '../../midsourcing/purge.ts';
import { purgeMidSeenRequests } from '../../midsourcing/seen-requests-purge.ts';
import { purgeTrackingEventsWindow, trackingEventPurgeRange } from '../../tracking/tracking-store.ts';
import { purgeWorkflowHistory } from '../workflow-store.ts';
import { runMaintenance } from '../maintenance.ts';
import { done, type StepContext, type StepDefinition } from '../types.ts';
import { type BatchTotals, inIdWindows, untilEmpty } from './batches.ts';
import { failStaleImports } from './stale-imports.ts';
import {
  deleteDeliveryLogsBatch,
  deleteDeliveryRow,
  deletedDeliveriesBefore,
  expiredDeliveries,
  finishExpiredDelivery,
  idRange,
  type AgedRowsTable,
  purgeAgedRowsWindow,
  purgeDeliveryLogsWindow,
  purgeStaleQualificationEntries,
} from './cleanup-store.ts';

// The cleanup workflow's tasks, in order: data, so later features add theirs (tracking logs,
// qualification samples) by inserting an entry before `database-maintenance`. Each is a step: the
// first failure stops the rest and is reported; a restart resumes from the failed task.

const day = 86_400_000;

/** Every row of `table` dated before `before`, in id windows of the cleanup's batch size. */
async function purgeAgedRows(ctx: StepContext, table: AgedRowsTable, before: number): Promise<BatchTotals> {
  const windows = await idRange(ctx.store, table);
  return inIdWindows(windows, ctx.config.workflows.cleanup.batchSize, ctx.keepAlive, (from, to) =>
    purgeAgedRowsWindow(ctx.store, table, from, to, before),
  );
}

export const expireDeliveries: StepDefinition = {
  name: 'expire-deliveries',
  async run(ctx) {
    const now = ctx.clock.now();
    const batch = ctx.config.workflows.cleanup.batchSize;
    let cancelled = 0;
    let batches = 0;
    const ids = await expiredDeliveries(ctx.store, now);
    for (const id of ids) {
      // Logs first: if the process dies in between, the delivery is still in progress and found again.
      const totals = await untilEmpty(ctx.keepAlive, () =>
        // Past its validity nothing more is tried: pending logs end as cancelled, reason `expired`.
        cancelPendingLogsBatch(ctx.store, id, { limit: batch, now, reason: 'expired' }),
      );
      await finishExpiredDelivery(ctx.store, id, now);
      cancelled += totals.rows;
      batches += totals.batches;
      await ctx.log(`delivery ${id} past its validity: finished, ${totals.rows} pending log(s) cancelled`);
    }
    return done(`${ids.length} deliveries finished, ${cancelled} pending logs cancelled in ${batches} batch(es)`);
  },
};

export const purgeDeliveryLogs: StepDefinition = {
  name: 'purge-delivery-logs',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const before = ctx.clock.now() - settings.deliveryLogsDays * day;
    const range = await idRange(ctx.store, 'delivery_logs');
    const totals = await inIdWindows(range, settings.batchSize, ctx.keepAlive, (from, to) =>
      purgeDeliveryLogsWindow(ctx.store, from, to, before),
    );
    await ctx.log(
      `delivery logs older than ${settings.deliveryLogsDays} days: deleted ${totals.rows} rows in ${totals.batches} batches of at most ${settings.batchSize}`,
    );
    return done(`${totals.rows} rows deleted in ${totals.batches} batches`);
  },
};

export const purgeDeletedDeliveries: StepDefinition = {
  name: 'purge-deleted-deliveries',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const ids = await deletedDeliveriesBefore(ctx.store, ctx.clock.now() - settings.deletedDeliveriesDays * day);
    let logs = 0;
    let batches = 0;
    for (const id of ids) {
      // Logs in batches first: the cascade of one DELETE would remove them all in one transaction.
      const totals = await untilEmpty(ctx.keepAlive, () => deleteDeliveryLogsBatch(ctx.store, id, settings.batchSize));
      await deleteDeliveryRow(ctx.store, id);
      logs += totals.rows;
      batches += totals.batches;
    }
    await ctx.log(
      `deleted deliveries older than ${settings.deletedDeliveriesDays} days: ${ids.length} purged with ${logs} logs in ${batches} batches`,
    );
    return done(`${ids.length} deliveries, ${logs} logs`);
  },
};

export const purgeImportRejects: StepDefinition = {
  name: 'purge-import-rejects',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const before = ctx.clock.now() - settings.importRejectsDays * day;
    const totals = await purgeAgedRows(ctx, 'import_rejects', before);
    await ctx.log(
      `import rejects older than ${settings.importRejectsDays} days: deleted ${totals.rows} rows in ${totals.batches} batches`,
    );
    return done(`${totals.rows} rows deleted in ${totals.batches} batches`);
  },
};

// Indicators are consolidated within the hour and kept; only the raw log goes. Keep trackingLogsDays
// at least tracking.tokenTtlDays: a click on a still-valid link recomputes its delivery from the raw
// events that remain.
export const purgeTrackingEvents: StepDefinition = {
  name: 'purge-tracking-events',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const before = ctx.clock.now() - settings.trackingLogsDays * day;
    const totals = await inIdWindows(
      await trackingEventPurgeRange(ctx.store, before),
      settings.batchSize,
      ctx.keepAlive,
      (from, to) => purgeTrackingEventsWindow(ctx.store, from, to, before),
    );
    await ctx.log(
      `raw tracking events older than ${settings.trackingLogsDays} days: deleted ${totals.rows} rows in ${totals.batches} batches of at most ${settings.batchSize}`,
    );
    return done(`${totals.rows} rows deleted in ${totals.batches} batches`);
  },
};

// The address timeline: states live in `addresses`, the rows are history. Keep addressEventsDays at
// least tracking.tokenTtlDays: an unsubscribe is recognised as a replay by its row.
export const purgeAddressEvents: StepDefinition = {
  name: 'purge-address-events',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const before = ctx.clock.now() - settings.addressEventsDays * day;
    const totals = await purgeAgedRows(ctx, 'address_events', before);
    await ctx.log(
      `address events older than ${settings.addressEventsDays} days: deleted ${totals.rows} rows in ${totals.batches} batches`,
    );
    return done(`${totals.rows} rows deleted in ${totals.batches} batches`);
  },
};

// Inbound samples and the qualification entries nobody decided on; kept and ignored entries stay.
export const purgeQualificationSamples: StepDefinition = {
  name: 'purge-qualification-samples',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const before = ctx.clock.now() - settings.qualificationSamplesDays * day;
    const samples = await purgeAgedRows(ctx, 'inbound_samples', before);
    const entries = await untilEmpty(ctx.keepAlive, () =>
      purgeStaleQualificationEntries(ctx.store, before, settings.batchSize),
    );
    const messagesBefore = ctx.clock.now() - settings.inboundMessagesDays * day;
    const messages = await untilEmpty(ctx.keepAlive, () =>
      purgeInboundMessagesBatch(ctx.store, messagesBefore, settings.batchSize),
    );
    await ctx.log(
      `qualification samples older than ${settings.qualificationSamplesDays} days: deleted ${samples.rows} inbound samples and ${entries.rows} undecided qualification entries; inbound message identities older than ${settings.inboundMessagesDays} days: deleted ${messages.rows}`,
    );
    return done(`${samples.rows} samples, ${entries.rows} entries, ${messages.rows} message identities deleted`);
  },
};

export const purgeHistory: StepDefinition = {
  name: 'purge-workflow-history',
  async run(ctx) {
    const days = ctx.config.workflows.historyDays;
    const before = ctx.clock.now() - days * day;
    const totals = await purgeWorkflowHistory(ctx.store, before, ctx.config.workflows.cleanup.batchSize);
    const maintenance = await purgeMaintenanceHistory(ctx.store, before);
    await ctx.log(
      `workflow history older than ${days} days: ${totals.runs} runs deleted in ${totals.batches} batches; ${maintenance} maintenance records`,
    );
    return done(`${totals.runs} runs deleted`);
  },
};

export const databaseMaintenance: StepDefinition = {
  name: 'database-maintenance',
  async run(ctx) {
    const summary = await runMaintenance(
      ctx.store,
      ctx.config,
      ctx.clock,
      { log: (m) => ctx.log(m), keepAlive: ctx.keepAlive },
      { source: 'cleanup' },
    );
    return done(JSON.stringify(summary));
  },
};

export const cleanupTasks: StepDefinition[] = [
  expireDeliveries,
  purgeDeliveryLogs,
  purgeDeletedDeliveries,
  failStaleImports,
  purgeImportRejects,
  purgeTrackingEvents,
  purgeAddressEvents,
  purgeQualificationSamples,
  purgeHistory,
  purgeMidLogChanges,
  purgeMidSeenRequests,
  databaseMaintenance,
];
