import { done, skipped, type StepDefinition, type WorkflowDefinition } from '../workflows/types.ts';
import { syncAll, type SyncKind } from './sync.ts';

// Technical workflows of the marketing side: pull counters often (cheap, one request per
// delivery) and delivery logs less often (incremental pages by the execution side's cursor).

function syncStep(kind: SyncKind): StepDefinition {
  return {
    name: `pull-${kind}`,
    async run(ctx) {
      const config = ctx.config.midsourcing;
      if (config.mode !== 'marketing') return skipped(`midsourcing.mode is ${config.mode}`);
      const result = await syncAll(ctx.store, config, kind, ctx.clock);
      for (const failure of result.failed) await ctx.log(`delivery ${failure.deliveryId}: ${failure.error}`, 'warn');
      if (result.failed.length > 0 && result.synced === 0) return { kind: 'failed', error: `${kind} pull failed for ${result.failed.length} deliveries: ${result.failed[0]!.error}` };
      await ctx.log(`${kind}: ${result.synced} deliveries pulled, ${result.failed.length} failed`);
      return done(`${result.synced} pulled, ${result.failed.length} failed`);
    },
  };
}

export const midSyncCountersWorkflow: WorkflowDefinition = {
  name: 'mid-sync-counters',
  description: 'pulls the counters of deliveries pushed to execution instances',
  schedule: '*/10 * * * *',
  steps: [syncStep('counters')],
};

export const midSyncLogsWorkflow: WorkflowDefinition = {
  name: 'mid-sync-logs',
  description: 'pulls delivery log outcomes of deliveries pushed to execution instances, by server cursor',
  schedule: '15 * * * *',
  steps: [syncStep('logs')],
};
