import {
  logChangePurgeCandidates,
  orphanLogChangeDeliveries,
  purgeOrphanLogChangesBatch,
  purgeReadLogChangesBatch,
} from './inbound-store.ts';
import { untilEmpty } from '../workflows/builtins/batches.ts';
import { done, type StepDefinition } from '../workflows/types.ts';

// Execution side: the change log the marketing side pulls with a cursor (mid_log_changes) would grow
// by one row per outcome forever. A change goes once its delivery's only consumer, the marketing peer
// that pushed it, has read past it (a logs request whose cursor is at or above its seq: the peer applies
// a page and moves its cursor in one transaction) and it was published more than
// `midsourcing.logChangesRetentionDays` ago. Changes of a delivery that no longer exists (purged by
// `purge-deleted-deliveries`) have no consumer left and go at once. Unpublished changes never go.

const day = 86_400_000;

export const purgeMidLogChanges: StepDefinition = {
  name: 'purge-mid-log-changes',
  async run(ctx) {
    const days = ctx.config.midsourcing.logChangesRetentionDays;
    const batchSize = ctx.config.workflows.cleanup.batchSize;
    const before = ctx.clock.now() - days * day;
    let rows = 0;
    let batches = 0;
    const candidates = await logChangePurgeCandidates(ctx.store, before);
    for (const { deliveryId, readCursor } of candidates) {
      const totals = await untilEmpty(ctx.keepAlive, () =>
        purgeReadLogChangesBatch(ctx.store, deliveryId, readCursor, before, batchSize),
      );
      rows += totals.rows;
      batches += totals.batches;
    }
    let orphans = 0;
    const gone = await orphanLogChangeDeliveries(ctx.store);
    for (const deliveryId of gone) {
      const totals = await untilEmpty(ctx.keepAlive, () =>
        purgeOrphanLogChangesBatch(ctx.store, deliveryId, batchSize),
      );
      orphans += totals.rows;
      batches += totals.batches;
    }
    await ctx.log(
      `mid-sourcing log changes read by their peer and older than ${days} days: deleted ${rows} rows of ${candidates.length} deliveries; ` +
        `${orphans} rows of ${gone.length} purged deliveries; ${batches} batches of at most ${batchSize}`,
    );
    return done(`${rows + orphans} rows deleted in ${batches} batches`);
  },
};
