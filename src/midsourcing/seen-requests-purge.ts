import { purgeSeenRequestsBatch } from './seen-request-store.ts';
import { untilEmpty } from '../workflows/builtins/batches.ts';
import { done, type StepDefinition } from '../workflows/types.ts';

// Execution side: the nonces of accepted signed requests (mid_seen_requests) only matter while a
// replay could still pass the timestamp check. A request stamped T is accepted while the server's
// clock is within ±window of T, and was seen at S ≥ T − window, so a replay is refused by its
// timestamp from S + 2 × window on. The margin covers clock differences between the processes.

const marginMs = 10 * 60_000;

/** Entries seen before this are useless: any replay of their request is stale already. */
export function seenRequestsPurgeBefore(now: number, replayWindowSeconds: number): number {
  return now - 2 * replayWindowSeconds * 1000 - marginMs;
}

export const purgeMidSeenRequests: StepDefinition = {
  name: 'purge-mid-seen-requests',
  async run(ctx) {
    const windowSeconds = ctx.config.midsourcing.replayWindowSeconds;
    const batchSize = ctx.config.workflows.cleanup.batchSize;
    const before = seenRequestsPurgeBefore(ctx.clock.now(), windowSeconds);
    const totals = await untilEmpty(ctx.keepAlive, () => purgeSeenRequestsBatch(ctx.store, before, batchSize));
    await ctx.log(
      `mid-sourcing request nonces older than twice the replay window (${windowSeconds} s) plus 10 min: deleted ${totals.rows} rows in ${totals.batches} batches of at most ${batchSize}`,
    );
    return done(`${totals.rows} rows deleted in ${totals.batches} batches`);
  },
};
