import { consolidatePending } from '../../tracking/consolidation-run.ts';
import { done, type WorkflowDefinition } from '../types.ts';

// The `tracking` technical workflow: raw tracking log → indicators per delivery (by link, by
// recipient domain, with and without flagged events). Hourly by default; the schedule is changed
// with workflows.overrides.tracking.schedule.

export const trackingWorkflow: WorkflowDefinition = {
  name: 'tracking',
  description:
    'consolidates raw tracking logs into indicators per delivery (opens, clicks, opt-outs, by link and domain)',
  schedule: '10 * * * *',
  steps: [
    {
      name: 'consolidate-tracking-logs',
      async run(ctx) {
        const summary = await consolidatePending(
          ctx.store,
          ctx.config.tracking.openDedupSeconds * 1_000,
          ctx.clock.now(),
          ctx.keepAlive,
        );
        await ctx.log(
          `consolidated ${summary.events} event(s) of ${summary.deliveries.length} deliveries; watermark at event ${summary.watermark}`,
        );
        return done(`${summary.deliveries.length} deliveries, ${summary.events} events`);
      },
    },
  ],
};
