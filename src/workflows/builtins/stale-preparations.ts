import {
  deleteDeliveryLogs,
  failedPreparationsWithLogs,
  failStalePreparation,
  stalePreparations,
} from '../../delivery/preparation-store.ts';
import { done, type StepDefinition } from '../types.ts';

// `herald delivery prepare` runs preparation inside its own process; if that process dies the delivery
// stays `preparing` with part of its logs. A live preparation renews deliveries.updated_at with every
// batch, so one silent for workflows.stalePreparationMinutes is over: it is failed with a message
// saying so (preparation_failed can be prepared again), and its logs are deleted so nothing is sent from them.

const minute = 60_000;

/** The error recorded on a preparation taken for interrupted. */
export function interruptedPreparationError(deliveryId: number, lastProgressAt: number): string {
  return `interrupted: no progress since ${new Date(lastProgressAt).toISOString()}; run \`herald delivery prepare ${deliveryId}\` again`;
}

export const failStalePreparations: StepDefinition = {
  name: 'fail-stale-preparations',
  async run(ctx) {
    const now = ctx.clock.now();
    const staleMinutes = ctx.config.workflows.stalePreparationMinutes;
    const before = now - staleMinutes * minute;
    let failed = 0;
    for (const stale of await stalePreparations(ctx.store, before)) {
      const error = interruptedPreparationError(stale.id, stale.lastProgressAt);
      if (!(await failStalePreparation(ctx.store, stale.id, { before, error, now }))) continue;
      failed += 1;
      await ctx.log(
        `delivery ${stale.id}: preparing with no progress since ${new Date(stale.lastProgressAt).toISOString()} (over ${staleMinutes} min), failed as interrupted`,
        'warn',
      );
    }
    // Every failed preparation that still has logs, not only those failed above: a run stopped between
    // failing a delivery and deleting its logs leaves them to the next one.
    let logs = 0;
    for (const deliveryId of await failedPreparationsWithLogs(ctx.store)) {
      logs += await deleteDeliveryLogs(ctx.store, deliveryId, {
        whileState: 'preparation_failed',
        afterBatch: ctx.keepAlive,
      });
    }
    return done(`${failed} preparations failed as interrupted, ${logs} logs deleted`);
  },
};
