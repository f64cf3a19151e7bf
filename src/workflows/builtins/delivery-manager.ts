import { done, type StepDefinition, type WorkflowDefinition } from '../types.ts';
import { cancelPendingLogs, stoppedDeliveriesWithPendingLogs } from '../../delivery/delivery-store.ts';
import { foldDeliveryLogCounts } from '../../delivery/log-counts-store.ts';
import { failStalePreparations } from './stale-preparations.ts';
import {
  clearDelayed,
  flagDelayed,
  inProgressDeliveryProgress,
  lastLogUpdate,
  startScheduledDeliveries,
} from './delivery-manager-store.ts';

// Starts deliveries whose scheduled time has come, and flags those that stopped progressing
// (no delivery log updated for workflows.delayedAfterMinutes) so the dashboard and doctor show them;
// fails preparations whose process died (src/workflows/builtins/stale-preparations.ts); folds the
// delivery log counter deltas PostgreSQL appends (migrations 0028, 0029, 0033); cancels the logs
// stopped deliveries got back from MTAs after the stop.

const startScheduled: StepDefinition = {
  name: 'start-scheduled-deliveries',
  async run(ctx) {
    const started = await startScheduledDeliveries(ctx.store, ctx.clock.now());
    if (started.length > 0) await ctx.log(`started scheduled deliveries: ${started.join(', ')}`);
    return done(`${started.length} started`);
  },
};

const flagStalled: StepDefinition = {
  name: 'flag-delayed-deliveries',
  async run(ctx) {
    const now = ctx.clock.now();
    const since = now - ctx.config.workflows.delayedAfterMinutes * 60_000;
    const delayed: number[] = [];
    for (const delivery of await inProgressDeliveryProgress(ctx.store, since)) {
      if (delivery.recentProgressAt !== null) continue;
      if (delivery.startedAt !== null && delivery.startedAt >= since) continue;
      const lastProgressAt = (await lastLogUpdate(ctx.store, delivery.deliveryId)) ?? delivery.startedAt ?? now;
      delayed.push(delivery.deliveryId);
      if (await flagDelayed(ctx.store, delivery.deliveryId, Math.max(lastProgressAt, delivery.startedAt ?? 0), now)) {
        await ctx.log(
          `delivery ${delivery.deliveryId} delayed: no progress since ${new Date(lastProgressAt).toISOString()}`,
          'warn',
        );
      }
    }
    const cleared = await clearDelayed(ctx.store, delayed);
    return done(`${delayed.length} delayed, ${cleared} no longer delayed`);
  },
};

// A stop cancels the pending logs, but those an MTA held at that moment come back to pending later
// (handed back untried, or deferred): cancelled here, so a stopped delivery never shows pending messages.
const cancelStoppedLeftovers: StepDefinition = {
  name: 'cancel-stopped-leftovers',
  async run(ctx) {
    const ids = await stoppedDeliveriesWithPendingLogs(ctx.store);
    let cancelled = 0;
    for (const id of ids) cancelled += await cancelPendingLogs(ctx.store, id, ctx.clock.now(), ctx.keepAlive);
    return done(`${cancelled} pending logs of ${ids.length} stopped deliveries cancelled`);
  },
};

const foldCounts: StepDefinition = {
  name: 'fold-delivery-log-counts',
  async run(ctx) {
    return done(`${await foldDeliveryLogCounts(ctx.store)} delivery counters folded`);
  },
};

export const deliveryManagerWorkflow: WorkflowDefinition = {
  name: 'delivery-manager',
  description:
    'starts scheduled deliveries; flags deliveries without progress as delayed; fails interrupted preparations; cancels what stopped deliveries got back; folds delivery log counts',
  schedule: '*/5 * * * *',
  steps: [startScheduled, flagStalled, failStalePreparations, cancelStoppedLeftovers, foldCounts],
};
