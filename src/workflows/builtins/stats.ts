import { done, type StepDefinition, type WorkflowDefinition } from '../types.ts';
import { aggregateLogsByHour, hourMs, latestStatsHour, replaceStatsHours } from './delivery-stats-store.ts';

// Hourly sending throughput per delivery, recipient domain and MX host, for the dashboard. A log
// counts in the hour it was last updated: the counts are a throughput view, not final indicators.
// Each run recomputes from the latest hour already stored (it may have been partial) to now,
// reading logs without a write lock and replacing only the small aggregate rows.

// After a long downtime only this far back is rebuilt: older hours would read a large slice of logs.
const maxHoursBack = 48;

const aggregate: StepDefinition = {
  name: 'aggregate-hourly-throughput',
  async run(ctx) {
    const now = ctx.clock.now();
    const currentHour = Math.floor(now / hourMs) * hourMs;
    const oldestAllowed = currentHour - maxHoursBack * hourMs;
    const latest = await latestStatsHour(ctx.store);
    let from = Math.max(latest ?? currentHour - hourMs, oldestAllowed);
    let rows = 0;
    let hours = 0;
    for (; from <= currentHour; from += hourMs) {
      const hourRows = await aggregateLogsByHour(ctx.store, from, from + hourMs);
      await replaceStatsHours(ctx.store, from, from + hourMs, hourRows, now);
      rows += hourRows.length;
      hours += 1;
      await ctx.keepAlive();
    }
    await ctx.log(`aggregated ${hours} hour(s) into ${rows} delivery/domain/MX rows`);
    return done(`${hours} hours, ${rows} rows`);
  },
};

export const statsWorkflow: WorkflowDefinition = {
  name: 'stats',
  description: 'aggregates sending throughput per delivery, domain and MX host, per hour',
  schedule: '5 * * * *',
  steps: [aggregate],
};
